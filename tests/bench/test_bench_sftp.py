"""SFTP upload of 128 MiB to OpenSSH sshd on loopback: fieldkit's transport vs OpenSSH's `sftp`.

Target (issue #3): ratio >= 0.85, both measured in the same run against the
same sshd. Run with `make bench`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fieldkit.transports.ssh import SshSession, SshTarget
from tests.support.sshd import Sshd, sshd_available

MIB = 1024 * 1024


@pytest.mark.skipif(not sshd_available() or shutil.which("sftp") is None, reason="needs OpenSSH sshd and sftp")
def test_sftp_upload_against_openssh(tmp_path: Path) -> None:
    server = Sshd(tmp_path / "sshd")
    server.start()
    payload = tmp_path / "payload.bin"
    with payload.open("wb") as handle:
        for _ in range(128):
            handle.write(os.urandom(MIB))
    try:

        def openssh() -> float:
            start = time.perf_counter()
            subprocess.run(
                [
                    "sftp",
                    "-q",
                    "-i",
                    str(server.client_key),
                    "-P",
                    str(server.port),
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "StrictHostKeyChecking=accept-new",
                    "-o",
                    f"UserKnownHostsFile={tmp_path / 'kh-openssh'}",
                    "-b",
                    "-",
                    f"{server.user}@127.0.0.1",
                ],
                input=f"put {payload} {tmp_path / 'openssh.bin'}\n".encode(),
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - start

        def fieldkit() -> float:
            target = SshTarget(server.user, "127.0.0.1", server.port)
            with SshSession(target, tmp_path / "kh", key_file=server.client_key, accept_new_host_key=True) as ssh:
                start = time.perf_counter()
                ssh.upload(payload, str(tmp_path / "fieldkit.bin"))
                return time.perf_counter() - start

        reference = min(openssh() for _ in range(3))
        ours = min(fieldkit() for _ in range(3))
    finally:
        server.stop()
    ratio = reference / ours
    print(f"\nOpenSSH sftp     {128 / reference:7.1f} MiB/s")
    print(f"fieldkit SFTP    {128 / ours:7.1f} MiB/s")
    print(f"ratio            {ratio:7.2f}  (target >= 0.85)")
    assert ratio >= 0.85
