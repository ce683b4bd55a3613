"""Outside text (from chargers, bundles, certificates, the audit trail) for Textual widgets.

Never read as markup (``[/]`` in a serial stays text) and never reaching the
terminal with control characters (shown escaped, as the CLI shows them).
Every TUI widget that shows such text goes through ``escape`` (inside markup)
or ``plain`` (a table cell).
"""

from __future__ import annotations

from rich.markup import escape as _escape_markup
from rich.text import Text

from fieldkit.printable import printable


def escape(value: object) -> str:
    """For a markup string: markup escaped, control characters shown as ``\\x1b``."""
    return _escape_markup(printable(value))


def plain(value: object) -> Text:
    """For a table cell or a Static: plain text, control characters shown as ``\\x1b``."""
    return Text(printable(value))
