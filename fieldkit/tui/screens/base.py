"""What every screen of the app shares: the app's typed handle, the table cursor, job panels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen
from textual.widgets import DataTable

from fieldkit.tui.messages import TransferProgressed
from fieldkit.tui.widgets.job_panel import JobPanel

if TYPE_CHECKING:
    from fieldkit.tui.app import FieldkitApp


class FieldkitScreen(Screen[None]):
    @property
    def fk(self) -> FieldkitApp:
        return self.app  # type: ignore[return-value]

    def highlighted_key(self) -> str | None:
        """The row key under the table's cursor, or None for an empty table."""
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def job_panel(self, address: str) -> JobPanel | None:
        return next((p for p in self.query(JobPanel) if p.address == address), None)

    def on_transfer_progressed(self, message: TransferProgressed) -> None:
        panel = self.job_panel(message.address)
        if panel is not None:
            panel.show_event(message.event)
