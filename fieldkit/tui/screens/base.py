"""What every screen of the app shares: the app's typed handle, table plumbing, job panels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.screen import Screen
from textual.widgets import DataTable

from fieldkit.tui.messages import TransferProgressed
from fieldkit.tui.outside_text import plain
from fieldkit.tui.widgets.job_panel import JobPanel

if TYPE_CHECKING:
    from fieldkit.tui.app import FieldkitApp


class FieldkitScreen(Screen[None]):
    @property
    def fk(self) -> FieldkitApp:
        return self.app  # type: ignore[return-value]

    def set_columns(self, columns: Iterable[str]) -> None:
        table = self.query_one(DataTable)
        for column in columns:
            table.add_column(column, key=column)

    def fit_columns(self) -> None:
        """Size every column to its widest cell now, after a table was filled in one go.

        DataTable measures new rows only when it next goes idle; on a busy
        laptop that can be much later, and the table shows header-wide columns
        (a bundle name cut to six letters) until a key is pressed. Widths set
        here need no measuring pass.
        """
        table = self.query_one(DataTable)
        for key, column in table.columns.items():
            cells = [table.get_cell(row, key) for row in table.rows]
            widest = max(
                [column.label.cell_len, *(plain(c).cell_len if isinstance(c, str) else c.cell_len for c in cells)]
            )
            column.width, column.auto_width = widest, False
        table.refresh(layout=True)

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
