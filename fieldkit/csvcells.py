"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Serials, sites, notes and errors in exports come from chargers, bundles and
technicians. A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is a formula to Excel and LibreOffice (``=HYPERLINK(...)``,
``@SUM(...)``): such a cell gets a leading ``'``, which spreadsheets take
as "this is text" and do not display.
"""

from __future__ import annotations

from typing import Final

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def row(values: list[object]) -> list[str]:
    return [cell(value) for value in values]
