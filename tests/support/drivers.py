"""A linux_ssh driver for a charger on loopback, with timings short enough for tests."""

from __future__ import annotations

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
