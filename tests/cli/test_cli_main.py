"""`fieldkit` with no command: the TUI on a terminal, the help text anywhere else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))


def test_no_command_without_a_terminal_prints_the_help() -> None:
    result = subprocess.run(
        [FIELDKIT], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: fieldkit")
    assert "  tui " in result.stdout
