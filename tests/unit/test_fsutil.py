from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fieldkit.fsutil import atomic_write_bytes, sha256_file


@pytest.mark.parametrize(("start", "length"), [(0, None), (0, 0), (10, 100), (5, 10_000_000), (1000, None)])
def test_sha256_of_a_range_in_small_chunks(tmp_path: Path, start: int, length: int | None) -> None:
    data = os.urandom(5000)
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = data[start:] if length is None else data[start : start + length]
    assert sha256_file(path, start, length, chunk_bytes=7) == (len(expected), hashlib.sha256(expected).hexdigest())


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "t"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]
