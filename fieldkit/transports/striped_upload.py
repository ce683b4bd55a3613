"""An SFTP upload spread over several channels of one SSH connection.

Why: an SSH channel carries at most the peer's window before it must wait
for a window adjust. dropbear, common on chargers, offers 24 KiB per channel
by default, so one channel moves at most 24 KiB per round trip: 2.4 MB/s on
a 10 ms field link, whatever the link could do. Each extra channel adds its
own window. OpenSSH's large windows make this unnecessary, but harmless.

The range is cut into blocks handed out in order. A worker may take a block
only within ``window_blocks`` of the lowest unfinished one, so whatever an
interrupted upload left unwritten lies in the last ``hole_bound_bytes`` of
the remote file: a resume checks the whole staged prefix first, then the
prefix that ends that far before its end (see linux_ssh._verified_prefix).
Progress reports the contiguous prefix, never a block past a hole.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

import paramiko

from fieldkit.transports.sftp_window import DEPTH, REQUEST_BYTES, WindowedWriter

BLOCK_BYTES: Final = 1024 * 1024


def hole_bound_bytes(streams: int, block_bytes: int = BLOCK_BYTES) -> int:
    """How far before the end of an interrupted striped upload a hole may lie.

    The block window, plus what may still be unanswered per channel (the
    writer's window of requests in flight, see sftp_window.py).
    """
    return (2 * streams) * block_bytes + streams * (DEPTH + 1) * REQUEST_BYTES


class StripedUpload:
    def __init__(
        self,
        open_sftp: Callable[[], paramiko.SFTPClient],
        local: Path,
        remote: str,
        source_start: int,
        offset: int,
        total: int,
        streams: int,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        self.open_sftp = open_sftp
        self.local = local
        self.remote = remote
        self.source_start = source_start
        self.offset = offset
        self.total = total
        self.streams = streams
        self.block_bytes = block_bytes
        self.blocks = -(-(total - offset) // block_bytes)
        self.window_blocks = 2 * streams
        self._cond = threading.Condition()
        self._next = 0
        self._done: set[int] = set()
        self._lowest = 0  # lowest block not yet finished
        self._error: BaseException | None = None

    def _take(self) -> int | None:
        with self._cond:
            while self._error is None and self._next < self.blocks and self._next >= self._lowest + self.window_blocks:
                self._cond.wait()
            if self._error is not None or self._next >= self.blocks:
                return None
            block = self._next
            self._next += 1
            return block

    def _finish(self, block: int) -> None:
        with self._cond:
            self._done.add(block)
            while self._lowest in self._done:
                self._done.discard(self._lowest)
                self._lowest += 1
            self._cond.notify_all()

    def _fail(self, error: BaseException) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    def _worker(self) -> None:
        try:
            sftp = self.open_sftp()
            try:
                with sftp.open(self.remote, "r+b") as handle, self.local.open("rb") as source:
                    writer = WindowedWriter(handle)
                    while (block := self._take()) is not None:
                        start = self.offset + block * self.block_bytes
                        length = min(self.block_bytes, self.total - start)
                        source.seek(self.source_start + start)
                        writer.write(start, source.read(length))
                        self._finish(block)
                    writer.flush()
            finally:
                sftp.close()
        except BaseException as exc:
            self._fail(exc)

    def contiguous_bytes(self) -> int:
        with self._cond:
            return min(self.total, self.offset + self._lowest * self.block_bytes)

    def run(self, on_progress: Callable[[int], None] | None, progress_interval_s: float = 0.1) -> int:
        """Upload; returns the bytes now there. Errors from workers (and from ``on_progress``) are raised here."""
        workers = [threading.Thread(target=self._worker, daemon=True) for _ in range(min(self.streams, self.blocks))]
        for worker in workers:
            worker.start()
        reported = -1
        try:
            while True:
                with self._cond:
                    finished = self._lowest >= self.blocks or self._error is not None
                    if not finished:
                        self._cond.wait(progress_interval_s)
                position = self.contiguous_bytes()
                if on_progress is not None and position != reported:
                    on_progress(position)
                    reported = position
                if finished:
                    break
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            for worker in workers:
                worker.join()
        if self._error is not None:
            raise self._error
        return self.total
