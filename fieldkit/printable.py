"""Text from outside (a bundle, a certificate, a charger, a file) made safe to show on a terminal.

C0 and C1 control characters (ESC among them) except tab and newline are
shown escaped (``\\x1b``): a bundle, a certificate or a charger must not be
able to move the cursor, retitle the window or hide text on the technician's
terminal. The CLI and the TUI both show outside text through this.
"""

from __future__ import annotations

import re
from typing import Final

_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    """``value`` as text, its control characters shown escaped (``\\x1b``); tab and newline kept."""
    return _CONTROL_CHARACTERS.sub(lambda found: f"\\x{ord(found.group()):02x}", str(value))
