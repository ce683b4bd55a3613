"""Windowed SFTP writes against real OpenSSH: every byte lands in place, and a failed write is not swallowed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from fieldkit.transports.sftp_window import WindowedWriter
from tests.support.sshd import Sshd, sshd_available

pytestmark = pytest.mark.skipif(not sshd_available(), reason="needs OpenSSH sshd (apt-get install openssh-server)")


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[paramiko.SFTPClient]:
    server = Sshd(tmp_path / "sshd")
    server.start()
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    host_key = paramiko.Ed25519Key.from_private_key_file(str(server.dir / "host_key"))
    client.get_host_keys().add(f"[127.0.0.1]:{server.port}", host_key.get_name(), host_key)
    client.connect("127.0.0.1", server.port, server.user, key_filename=str(server.client_key), look_for_keys=False,
                   allow_agent=False)  # fmt: skip
    try:
        yield client.open_sftp()
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("depth", [1, 4, 64])
def test_ranges_written_out_of_order_land_in_place(sftp: paramiko.SFTPClient, tmp_path: Path, depth: int) -> None:
    data = os.urandom(3 * 1024 * 1024 + 123)
    remote = str(tmp_path / "image.bin")
    with sftp.open(remote, "wb") as handle:
        writer = WindowedWriter(handle, depth)
        half = len(data) // 2
        writer.write(half, data[half:])  # the second half first, as a striped upload may
        writer.write(0, memoryview(data)[:half])
        writer.flush()
    assert hashlib.sha256(Path(remote).read_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_refused_write_raises_instead_of_being_dropped(sftp: paramiko.SFTPClient, tmp_path: Path) -> None:
    remote = tmp_path / "read-only.bin"
    remote.write_bytes(b"factory image")
    with sftp.open(str(remote), "rb") as handle:  # the server refuses writes through a read-only handle
        writer = WindowedWriter(handle, depth=4)

        def write_all() -> None:
            writer.write(0, b"x" * 200_000)
            writer.flush()

        with pytest.raises(OSError, match=r"(?i)no such file|permission denied|failure"):
            write_all()
    assert remote.read_bytes() == b"factory image"
