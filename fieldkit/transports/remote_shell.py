"""The remote shell shape: commands and file transfer on a Linux charger (today: SSH, ``ssh.py``).

One of the three shapes of link (the others: ``byte_stream.py``,
``usb_control.py``). The Linux charger driver is written against this
protocol, not against paramiko or ``SshSession``, so another way into a
shell (a vendor's own tunnel, a serial console running a shell) can serve
the same driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


class RemoteShell(Protocol):
    """An authenticated session on a charger; every failure is a fieldkit TransportError."""

    upload_streams: int  # channels an upload is spread over (a resume needs to know how holes may lie)

    @property
    def address(self) -> str:
        """The charger's address, as the technician gave it."""
        ...

    @property
    def login_user(self) -> str: ...

    def connect(self) -> None: ...

    def run(self, command: str, timeout_s: float = 60.0, stdin: bytes | None = None) -> CommandResult: ...

    def remote_size(self, path: str) -> int | None:
        """The size of a file on the charger, None when there is none."""
        ...

    def upload(
        self,
        local: Path,
        remote: str,
        offset: int = 0,
        on_progress: Callable[[int], None] | None = None,
        source_start: int = 0,
        length: int | None = None,
    ) -> int:
        """Write bytes of a local range to ``remote`` from ``offset``; returns the bytes now there."""
        ...

    def close(self) -> None: ...
