"""128 MiB upload to a Linux charger: fieldkit's SFTP against `scp` to the same server, in one run.

Servers: dropbear with its default 24 KiB channel window (the common case on
chargers), dropbear with a 10 MiB window, and OpenSSH sshd, all on the rig
(tests/support/rig.py), logging in as the rig's users. Each is measured
straight over loopback and through a proxy adding 2 ms of round trip, as a
field link (a USB-Ethernet adapter, a site switch) has: that is where a
24 KiB window bites, since one channel then moves one window per round trip.
The proxy runs in a process of its own: in this one it would compete with
fieldkit's Python client for the interpreter lock, and not with `scp`.
Targets (issue #10): at least scp's speed against dropbear's default window
on the field link; and with a large window or against OpenSSH, not behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fieldkit.transports.ssh import SshSession, SshTarget
from tests.support.netfault import LatencyProxyProcess
from tests.support.rig import LinuxRig, Server, rig_missing

MIB = 1024 * 1024
SIZE_MIB = 128
CASES: list[tuple[Server, int | None, float]] = [
    ("dropbear", None, 0.0),
    ("dropbear", None, 0.001),
    ("dropbear", 10 * MIB, 0.0),
    ("dropbear", 10 * MIB, 0.001),
    ("sshd", None, 0.0),
    ("sshd", None, 0.001),
]


def _scp(rig: LinuxRig, port: int, payload: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["scp", "-q", "-P", str(port), "-i", str(rig.client_key), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         str(payload), f"{rig.user}@127.0.0.1:/var/tmp/scp.bin"],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def _fieldkit(rig: LinuxRig, port: int, payload: Path, tmp_path: Path) -> float:
    target = SshTarget(rig.user, "127.0.0.1", port)
    session = SshSession(
        target, tmp_path / "known_hosts", key_file=rig.client_key, accept_new_host_key=True, upload_streams=4
    )
    with session:
        start = time.perf_counter()
        session.upload(payload, "/var/tmp/fieldkit.bin")
        return time.perf_counter() - start


@pytest.mark.skipif(rig_missing() is not None or shutil.which("scp") is None, reason="needs the rig and scp")
def test_upload_against_scp_on_dropbear_and_openssh(tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    with payload.open("wb") as handle:
        for _ in range(SIZE_MIB):
            handle.write(os.urandom(MIB))
    rows = []
    for server, window, one_way_s in CASES:
        rig = LinuxRig(tmp_path / f"rig-{server}-{window}-{one_way_s}", server, window).prepare()
        rig.start()
        proxy = LatencyProxyProcess(rig.port, one_way_s) if one_way_s else None
        port = proxy.port if proxy else rig.port
        try:
            # Alternated, best of three each: a load that comes and goes on the machine hits both alike.
            scp_s, fieldkit_s = [], []
            for _ in range(3):
                scp_s.append(_scp(rig, port, payload))
                fieldkit_s.append(_fieldkit(rig, port, payload, tmp_path))
            reference, ours = min(scp_s), min(fieldkit_s)
        finally:
            if proxy:
                proxy.close()
            rig.power_off()
        rows.append((server, window, one_way_s, reference, ours))
    print(f"\n{'server':<10}{'window':>10}{'RTT':>8}{'scp MiB/s':>12}{'fieldkit MiB/s':>16}{'ratio':>8}")
    for server, window, one_way_s, reference, ours in rows:
        window_text = "default" if window is None else f"{window // MIB} MiB"
        print(f"{server:<10}{window_text:>10}{one_way_s * 2000:>6.0f}ms{SIZE_MIB / reference:>12.1f}"
              f"{SIZE_MIB / ours:>16.1f}{reference / ours:>8.2f}")  # fmt: skip
    by_case = {(s, w, d): r / o for s, w, d, r, o in rows}
    assert by_case[("dropbear", None, 0.001)] >= 1.0, "dropbear's default window on a field link: not behind scp"
    assert by_case[("dropbear", 10 * MIB, 0.0)] >= 0.85
    assert by_case[("sshd", None, 0.0)] >= 0.85
