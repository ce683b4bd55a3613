"""A table whose column widths follow what it holds and how wide it is, never what its first rows were."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.errors import MarkupError
from rich.text import Text
from textual import events
from textual.widgets import DataTable

# A column that has to give way still shows this many cells, so that its first letters hint at what it holds.
SHORTEST_ABBREVIATION = 4


def _cell_width(cell: object) -> int:
    if isinstance(cell, Text):
        return cell.cell_len
    text = str(cell)
    try:  # DataTable renders a plain str as markup ("[red]NO[/]" shows as two cells)
        return Text.from_markup(text).cell_len
    except MarkupError:
        return Text(text).cell_len


def column_widths(natural: Sequence[int], keep: Sequence[bool], available: int, padding: int) -> list[int]:
    """Widths for columns of ``natural`` content widths in ``available`` cells (``padding`` around each).

    Columns to ``keep`` get their whole width first: a serial or a version cut short is a wrong serial or
    version. The others share what is left in their order (most important first), each cut to what remains
    but never below a short abbreviation; if even that does not fit, the table scrolls sideways.
    """
    widths = [width if kept else 0 for width, kept in zip(natural, keep, strict=True)]
    left = available - sum(width + padding for width, kept in zip(natural, keep, strict=True) if kept)
    for index, (width, kept) in enumerate(zip(natural, keep, strict=True)):
        if kept:
            continue
        widths[index] = max(min(width, left - padding), min(width, SHORTEST_ABBREVIATION))
        left -= widths[index] + padding
    return widths


class FittedTable(DataTable[object]):
    """A row-cursor DataTable that sizes its columns itself (`fit`), on every resize and whenever told.

    DataTable on its own measures new cells only when it next goes idle and never shrinks a column to fit
    the screen: on a busy laptop a table showed header-wide columns (a serial cut to six letters) until a
    key was pressed, and at 80 columns the columns that matter fell off the right edge.
    """

    def __init__(self, columns: Sequence[str], keep: Collection[str], *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._column_names = tuple(columns)
        self._keep = frozenset(keep)

    def on_mount(self) -> None:
        for name in self._column_names:
            self.add_column(name, key=name)

    def on_resize(self, _: events.Resize) -> None:
        self.fit()

    def fit(self) -> None:
        """Size every column now from its label and cells and the table's current width."""
        if not self.columns:
            return
        columns = list(self.columns.values())
        natural = [
            max([column.label.cell_len, *(_cell_width(self.get_cell(row, column.key)) for row in self.rows)])
            for column in columns
        ]
        keep = [str(column.key.value) in self._keep for column in columns]
        available = self.scrollable_content_region.width or sum(natural)  # not laid out yet: natural widths
        padding = 2 * self.cell_padding
        widths = column_widths(natural, keep, available, padding)
        for column, width in zip(columns, widths, strict=True):
            column.width, column.auto_width = width, False
        # While the kept columns fit, what is cut at the right edge stays cut (its text is in the detail pane)
        # rather than costing a row for a sideways scrollbar; only a terminal too narrow for them scrolls.
        kept_width = sum(width + padding for width, kept in zip(natural, keep, strict=True) if kept)
        self.styles.overflow_x = "hidden" if kept_width <= available else "auto"
        self._clear_caches()
        self.refresh(layout=True)
