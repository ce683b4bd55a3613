"""A linux_ssh driver for a charger on loopback, with timings short enough for tests."""

from __future__ import annotations

import time
from pathlib import Path

from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.transports.ssh import SshSession, SshTarget


def loopback_driver(user: str, port: int, key: Path, tmp_path: Path) -> LinuxSshDriver:
    target = SshTarget(user, "127.0.0.1", port)
    return LinuxSshDriver(
        lambda: SshSession(target, tmp_path / "known_hosts", key_file=key, accept_new_host_key=True),
        staging_dir=str(tmp_path / "staging"),
        health_stable_s=0.3,
        health_timeout_s=5,
        poll_s=0.1,
        reboot_timeout_s=10,
    )


def settled_size(path: Path, interval_s: float = 0.2, timeout_s: float = 10.0) -> int:
    """A staged file's size once writes still in flight have landed (two equal readings ``interval_s`` apart)."""
    size, deadline = -1, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else 0
        if now == size:
            return size
        size = now
        time.sleep(interval_s)
    raise AssertionError(f"{path} never settled")
