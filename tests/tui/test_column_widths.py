"""Column widths from content and the room there is: kept columns whole, the others cut in their order."""

from __future__ import annotations

from fieldkit.tui.widgets.fitted_table import SHORTEST_ABBREVIATION, column_widths


def test_everything_whole_when_it_fits() -> None:
    assert column_widths([3, 13, 7], [True, True, False], available=80, padding=2) == [3, 13, 7]


def test_kept_columns_stay_whole_and_the_others_give_way_in_order() -> None:
    # 3+13+7 kept (29 with padding) in 40 cells: 11 left, the first other column takes 9 of its 20.
    widths = column_widths([3, 13, 7, 20, 15], [True, True, True, False, False], available=40, padding=2)
    assert widths[:3] == [3, 13, 7]
    assert widths[3] == 40 - 29 - 2
    assert widths[4] == SHORTEST_ABBREVIATION, "a column with no room left still hints at what it holds"


def test_a_short_column_is_never_padded_to_the_abbreviation() -> None:
    assert column_widths([5, 2], [True, False], available=7, padding=2) == [5, 2]


def test_kept_columns_are_not_cut_even_when_they_do_not_fit() -> None:
    """Then the table scrolls sideways: a serial cut short is a wrong serial."""
    assert column_widths([30, 30], [True, True], available=40, padding=2) == [30, 30]
