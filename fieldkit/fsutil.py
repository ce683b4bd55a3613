"""File helpers shared by every layer: crash-safe writing, streamed hashing.

Write to a temporary file in the same directory, fsync it, rename it over the
target, fsync the directory: after a crash or power cut the target holds the
old content or the new, never a mix, and a write that returned is on disk.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


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
