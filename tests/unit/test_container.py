from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from fieldkit.bundles.container import BundleContainer, PayloadSource, replace_signatures, write_container
from fieldkit.config import Limits
from fieldkit.errors import BundleRejectedError


def _bundle(tmp_path: Path, payloads: dict[str, bytes]) -> Path:
    sources = []
    for name, data in payloads.items():
        source = tmp_path / f"src-{name}"
        source.write_bytes(data)
        sources.append(PayloadSource(f"payloads/{name}", source))
    path = tmp_path / "b.fwbundle"
    write_container(path, b'{"m": 1}', sources, b'{"signatures":[]}')
    return path


def test_round_trip_keeps_canonical_order_and_bytes(tmp_path: Path) -> None:
    path = _bundle(tmp_path, {"zeta": b"Z" * 10, "alpha": b"A" * 3_000_000})
    container = BundleContainer.open(path, Limits())
    assert list(container.members) == ["manifest.json", "payloads/alpha", "payloads/zeta", "signatures.json"]
    assert b"".join(bytes(c) for c in container.iter_chunks("payloads/alpha")) == b"A" * 3_000_000
    digest, crc_ok = container.digest("payloads/zeta")
    assert crc_ok
    assert len(digest) == 32


def test_standard_zip_tools_read_bundles(tmp_path: Path) -> None:
    path = _bundle(tmp_path, {"rootfs": b"R" * 1000})
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.read("payloads/rootfs") == b"R" * 1000
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
    if shutil.which("unzip"):
        listing = subprocess.run(["unzip", "-l", str(path)], capture_output=True, text=True, check=True).stdout
        assert "payloads/rootfs" in listing


def test_writing_is_deterministic(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _bundle(tmp_path / "a", {"rootfs": b"R" * 1000})
    second = _bundle(tmp_path / "b", {"rootfs": b"R" * 1000})
    assert first.read_bytes() == second.read_bytes()


def test_replacing_signatures_keeps_every_other_byte(tmp_path: Path) -> None:
    path = _bundle(tmp_path, {"rootfs": b"R" * 100_000})
    before = path.read_bytes()
    container = BundleContainer.open(path, Limits())
    sig_offset = container.members["signatures.json"].header_offset
    replace_signatures(container, b'{"signatures":["x"]}')
    after = path.read_bytes()
    assert after[:sig_offset] == before[:sig_offset]
    reopened = BundleContainer.open(path, Limits())
    assert reopened.read_small("signatures.json", 1000, "x", "signatures") == b'{"signatures":["x"]}'


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out.fwbundle"
    with pytest.raises(FileNotFoundError):
        write_container(out, b"{}", [PayloadSource("payloads/x", tmp_path / "missing")], b"{}")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("limits", "code"),
    [(Limits(max_members=2), "too-many-members"), (Limits(max_bundle_bytes=100), "bundle-too-large")],
)
def test_limits_are_enforced_before_reading_members(tmp_path: Path, limits: Limits, code: str) -> None:
    path = _bundle(tmp_path, {"rootfs": b"R" * 1000})
    with pytest.raises(BundleRejectedError) as caught:
        BundleContainer.open(path, limits)
    assert caught.value.code == code


def test_a_directory_or_missing_path_is_refused_cleanly(tmp_path: Path) -> None:
    for path, code in ((tmp_path, "not-a-file"), (tmp_path / "nope", "not-found")):
        with pytest.raises(BundleRejectedError) as caught:
            BundleContainer.open(path, Limits())
        assert caught.value.code == code
