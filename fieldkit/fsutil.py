"""File helpers shared by every layer: crash-safe writing, bounded reading, streamed hashing.

Write to a temporary file in the same directory, fsync it, rename it over the
target, fsync the directory: after a crash or power cut the target holds the
old content or the new, never a mix, and a write that returned is on disk.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from fieldkit.errors import UsageError


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Path, mode: int = 0o600) -> Iterator[BinaryIO]:
    """A file handle whose content replaces ``path`` atomically when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        fsync_directory(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def not_a_file(mode: int) -> str | None:
    """What a path with this ``st_mode`` is when it is not a regular file ("a FIFO", "a directory"...), else None."""
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


@contextmanager
def open_regular_file(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading, refused (UsageError) unless it is a regular file.

    Opened without blocking, then checked: a FIFO put where a document or a
    bundle belongs would otherwise hang the reader until something writes to
    it. FileNotFoundError and other OSErrors pass through for the caller to word.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = not_a_file(os.fstat(fd).st_mode)  # before fdopen, which refuses a directory in its own words
        if kind is not None:
            raise UsageError(f"{path} is {kind}, not a regular file", "give the path of a file")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The content of ``path``, refused (UsageError) unless it is a regular file of at most ``max_bytes``."""
    with open_regular_file(path) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UsageError(f"{path} is larger than the {max_bytes:,} bytes allowed", "give the path of the right file")
    return data


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    with atomic_output(path, mode) as handle:
        handle.write(data)


def sha256_file(path: Path, start: int = 0, length: int | None = None, chunk_bytes: int = 1 << 20) -> tuple[int, str]:
    """(bytes hashed, hex SHA-256) of ``length`` bytes of ``path`` from ``start`` (to the end by default).

    Streamed: memory stays at one chunk whatever the file size.
    """
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        handle.seek(start)
        hashed = feed_hasher(handle, hasher, length, chunk_bytes)
    return hashed, hasher.hexdigest()


def feed_hasher(handle: BinaryIO, hasher: hashlib._Hash, length: int | None = None, chunk_bytes: int = 1 << 20) -> int:
    """Feed ``length`` bytes of ``handle`` from where it stands (to its end by default) to ``hasher``;
    returns the bytes fed. One chunk in memory at a time."""
    hashed = 0
    while length is None or hashed < length:
        want = chunk_bytes if length is None else min(chunk_bytes, length - hashed)
        chunk = handle.read(want)
        if not chunk:
            break
        hasher.update(chunk)
        hashed += len(chunk)
    return hashed
