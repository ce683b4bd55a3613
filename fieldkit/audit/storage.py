"""A TinyDB Storage that never leaves a half-written file.

Every write goes to a temporary file in the same directory, is fsynced,
renamed over the segment, and the directory is fsynced: after a crash or a
power cut the segment holds either the previous state or the new one. The
parsed content is cached, since this process is the only writer (the store
holds a lock), so reads cost nothing after the first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from tinydb.storages import Storage

from fieldkit.fsutil import atomic_write_bytes
from fieldkit.safejson import parse_bounded

MAX_SEGMENT_BYTES: Final = 16 * 1024 * 1024  # 128 entries of at most 96 KiB each, with room


class AtomicJSONStorage(Storage):
    """TinyDB storage: atomic replace on every write; read-only when sealed."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._cache: dict[str, Any] | None = None

    def read(self) -> dict[str, Any] | None:
        if self._cache is None:
            try:
                text = self.path.read_bytes()
            except FileNotFoundError:
                return None
            # The store checked this segment with the same bounds before opening it for writing.
            self._cache = parse_bounded(text, MAX_SEGMENT_BYTES, 16, signed_entries=True) if text else None
        return self._cache

    def write(self, data: dict[str, Any]) -> None:
        if self.read_only:
            raise PermissionError(f"{self.path} is a sealed audit segment")
        try:
            atomic_write_bytes(self.path, json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        except BaseException:
            self._cache = None  # TinyDB mutated the cached dict; the disk is the truth
            raise
        self._cache = data

    def close(self) -> None:
        self._cache = None
