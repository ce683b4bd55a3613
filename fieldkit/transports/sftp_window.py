"""SFTP writes with a sliding window of requests in flight.

Why not paramiko's own pipelining (``SFTPFile.set_pipelined``)? Past 100
unacknowledged writes it waits for *all* of them before sending more. On a
link with a round trip of a few milliseconds and a large SSH window that
empties the pipe on every drain: the last request must cross the link,
be written and be answered while nothing new is sent, and an upload to
dropbear with a 10 MiB window over a 2 ms link ran at about half of
``scp``'s speed. Here, once ``depth`` writes are in flight, each new one
waits for the *oldest* answer only, so the pipe stays full.

This reads answers through paramiko's ``SFTPClient._async_request`` and
``_read_response`` (the calls its own pipelining and prefetching use). An
SFTP v3 server answers requests of one handle in order (OpenSSH's
sftp-server, which dropbear uses too), so the oldest answer is the next one
on the channel. Every answer is checked: a failed write raises here, with
the server's reason, instead of being dropped.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Protocol, cast

import paramiko
from paramiko.sftp import CMD_WRITE, int64

DEPTH: Final = 64  # writes in flight per channel: 2 MiB of 32 KiB requests
REQUEST_BYTES: Final = 32 * 1024  # paramiko's (and OpenSSH's) SFTP write size


class _RequestChannel(Protocol):
    """The two SFTPClient calls paramiko's own pipelining uses (not in its type stubs)."""

    def _async_request(self, fileobj: object, t: int, *args: object) -> int: ...

    def _read_response(self, waitfor: int | None = None) -> tuple[int | None, object]: ...


class WindowedWriter:
    """Write byte ranges of one open remote file, keeping up to ``depth`` requests unanswered."""

    def __init__(self, handle: paramiko.SFTPFile, depth: int = DEPTH) -> None:
        self._sftp = cast(_RequestChannel, handle.sftp)
        self._handle = handle.handle
        self._depth = depth
        self._in_flight: deque[int] = deque()

    def write(self, offset: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        for start in range(0, len(view), REQUEST_BYTES):
            piece = bytes(view[start : start + REQUEST_BYTES])
            request = self._sftp._async_request(type(None), CMD_WRITE, self._handle, int64(offset + start), piece)
            self._in_flight.append(request)
            while len(self._in_flight) > self._depth:
                self._answer_oldest()

    def flush(self) -> None:
        """Wait until every write so far is answered (and raise if one failed)."""
        while self._in_flight:
            self._answer_oldest()

    def _answer_oldest(self) -> None:
        # Raises the server's error (IOError/PermissionError) for a failed write, SSHException for a lost link.
        self._sftp._read_response(self._in_flight.popleft())
