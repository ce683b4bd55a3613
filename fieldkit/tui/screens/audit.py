"""Audit: the trail with a filter and entry detail, chain status, and sync with the back office.

The app tries to deliver pending entries every SYNC_INTERVAL_S in the
background while it runs (when this laptop is enrolled); "sync now" here
does it at once.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Final

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.events import Key
from textual.widgets import DataTable, Header, Input, Static

from fieldkit.errors import FieldkitError
from fieldkit.tui.actions import bindings_for, key_bar, navigation_line
from fieldkit.tui.messages import AuditSynced
from fieldkit.tui.outside_text import escape, plain
from fieldkit.tui.screens.base import FieldkitScreen
from fieldkit.tui.widgets.fitted_table import FittedTable

COLUMNS = ("seq", "time (UTC)", "action", "charger", "status")
KEEP = COLUMNS  # all short, and each of them is what an audit is read for

SYNC_INTERVAL_S: Final = 60.0
SHOWN_ENTRIES: Final = 500


def matches(entry: dict[str, Any], query: str) -> bool:
    if not query:
        return True
    charger = entry.get("charger") or {}
    haystack = " ".join(
        str(v)
        for v in (
            entry.get("action"),
            entry.get("status"),
            charger.get("serial"),
            charger.get("model"),
            entry.get("note"),
            entry.get("error"),
        )
        if v
    ).lower()
    return all(word in haystack for word in query.lower().split())


class AuditScreen(FieldkitScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("audit")
    AUTO_FOCUS = "#audit-table"  # keys act on the trail; / moves to the filter

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(navigation_line("audit"), classes="nav")
        yield Static("", id="audit-sync", classes="status")
        yield Input(placeholder="/ filter: action, status, serial, text", id="audit-filter")
        with Horizontal(id="audit-body"):
            yield FittedTable(COLUMNS, KEEP, id="audit-table")
            with VerticalScroll(id="audit-detail", classes="detail"):
                yield Static("", id="audit-entry")
        yield Static(key_bar("audit"), classes="keybar")

    def on_screen_resume(self) -> None:
        self.load()

    @work(exclusive=True, group="audit-load", thread=True)
    def load(self) -> None:
        audit = self.fk.context.audit
        try:
            entries = audit.entries()
            status = audit.status()
            reachable = audit.reachable()
        except FieldkitError as exc:
            self.app.call_from_thread(self.notify, escape(exc.one_line()), severity="error")
            return
        self.app.call_from_thread(self._show, entries, status, reachable, audit.backoffice_url())

    def _show(self, entries: list[dict[str, Any]], status: Any, reachable: bool | None, url: str) -> None:
        self.entries = entries
        backoffice = (
            "not enrolled" if reachable is None else f"{escape(url)} ({'reachable' if reachable else 'unreachable'})"
        )
        self.query_one("#audit-sync", Static).update(
            f"{status.entries} entries · {status.pending} pending · last sync {status.last_success_at or 'never'}"
            f" · back office {backoffice} · chain {status.chain}"
            + (f" · last error: {escape(status.last_error)}" if status.last_error else "")
        )
        self._fill()

    def _fill(self) -> None:
        query = self.query_one("#audit-filter", Input).value
        table = self.query_one(FittedTable)
        table.clear()
        shown = [e for e in self.entries if matches(e, query)][-SHOWN_ENTRIES:]
        for entry in reversed(shown):  # newest first
            cells = (
                str(entry["seq"]),
                entry["time"]["wall_utc"][:19].replace("T", " "),
                entry["action"],
                (entry.get("charger") or {}).get("serial", ""),
                entry.get("status") or "",
            )
            table.add_row(*(plain(cell) for cell in cells), key=str(entry["seq"]))
        table.fit()
        self._show_entry()

    def on_input_changed(self, _: Input.Changed) -> None:
        self._fill()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    def on_key(self, event: Key) -> None:
        """Esc (or Enter) in the filter goes back to the trail, so keys act on it again (q, digits...)."""
        if event.key in ("escape", "enter") and self.focused is self.query_one("#audit-filter", Input):
            event.stop()
            self.query_one("#audit-table", DataTable).focus()

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_entry()

    def _show_entry(self) -> None:
        table = self.query_one(FittedTable)
        detail = self.query_one("#audit-entry", Static)
        if table.row_count == 0:
            detail.update("no entries" if not self.entries else "no entry matches the filter")
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        entry = next((e for e in self.entries if str(e["seq"]) == row_key.value), None)
        detail.update(escape(json.dumps(entry, indent=2, ensure_ascii=False)) if entry else "")

    def action_verify_chain(self) -> None:
        self.verify()

    @work(exclusive=True, group="audit-verify", thread=True)
    def verify(self) -> None:
        try:
            verdict = self.fk.context.audit.verify_chain()
        except FieldkitError as exc:
            verdict = exc.one_line()
        self.app.call_from_thread(self.notify, escape(f"audit chain {verdict}"), timeout=8)
        self.app.call_from_thread(self.load)  # the status line shows the verdict too

    def action_sync_now(self) -> None:
        self.sync()

    @work(exclusive=True, group="audit-sync", thread=True)
    def sync(self) -> None:
        try:
            self.post_message(AuditSynced(self.fk.context.audit.sync_now(), True))
        except FieldkitError as exc:
            self.post_message(AuditSynced(exc.one_line(), False))

    def on_audit_synced(self, message: AuditSynced) -> None:
        message.stop()  # shown here; the app's handler of background syncs would show it a second time
        self.notify(escape(message.text), severity="information" if message.ok else "warning")
        self.load()
