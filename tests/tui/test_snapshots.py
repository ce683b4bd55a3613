"""Snapshots of the screens whose content is deterministic, at 80x24 and 120x40, dark and light.

Regenerate after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`
and review the SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown

from tests.tui.conftest import tui_site
from tests.tui.pilot import until

SIZES = [(80, 24), (120, 40)]


async def _bundle_notes_shown(pilot: Pilot[Any]) -> None:
    """The library verified and the first bundle's notes rendered (Markdown renders asynchronously)."""
    notes = pilot.app.screen.query_one("#bundle-notes", Markdown)
    await until(pilot, lambda: "Verdict" in notes.source, what="the bundle notes")
    await until(pilot, lambda: bool(notes.query("MarkdownParagraph")), what="the rendered notes")
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
@pytest.mark.parametrize("screen", ["help", "bundles", "update", "audit"])
def test_screen_snapshots(
    snap_compare: Callable[..., bool],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_library: Path,
    screen: str,
    size: tuple[int, int],
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        app = site.app([])

        async def arrive(pilot: Pilot[Any]) -> None:
            if screen == "help":
                await pilot.press("question_mark")
            elif screen == "bundles":
                await pilot.press("2")
                await _bundle_notes_shown(pilot)
            elif screen == "update":
                await pilot.press("3")
            else:
                await pilot.press("5")
                await until(pilot, lambda: "entries" in str(app.screen.query_one("#audit-sync").render()))
            await pilot.pause()

        assert snap_compare(app, terminal_size=size, run_before=arrive)


def test_light_theme_snapshot(
    snap_compare: Callable[..., bool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        app = site.app([])

        async def arrive(pilot: Pilot[Any]) -> None:
            app.theme = "textual-light"
            await pilot.press("2")
            await _bundle_notes_shown(pilot)

        assert snap_compare(app, terminal_size=(80, 24), run_before=arrive)
