"""Helpers for driving the app with Textual's Pilot."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import DataTable

from fieldkit.tui.app import FieldkitApp


async def until(
    pilot: Pilot[str | None], condition: Callable[[], bool], timeout_s: float = 30.0, what: str = ""
) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


def table_rows(app: FieldkitApp, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


async def highlight_row(pilot: Pilot[str | None], selector: str, contains: str) -> None:
    """Move the cursor of a table to the first row containing ``contains``."""
    table = pilot.app.screen.query_one(selector, DataTable)
    for index in range(table.row_count):
        if any(contains in str(cell) for cell in table.get_row_at(index)):
            table.move_cursor(row=index)
            await pilot.pause()
            return
    raise AssertionError(f"no row with {contains!r} in {selector}")


async def discovered(pilot: Pilot[str | None], count: int) -> None:
    app = pilot.app
    assert isinstance(app, FieldkitApp)

    def settled() -> int:
        return len(app.chargers) + sum(1 for p in app.charger_problems.values() if p != "identifying...")

    await until(pilot, lambda: settled() >= count, what="discovery")


def drawn_lines(app: FieldkitApp, selector: str) -> list[str]:
    """The lines a widget draws now, as a person sees them: cells a column is too narrow for are not there."""
    widget = app.screen.query_one(selector)
    return [strip.text for strip in widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))]
