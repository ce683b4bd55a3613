"""From a charger address to a driver: the one place a protocol is picked for an address."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fieldkit.config import Settings, data_dir
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.errors import UsageError
from fieldkit.transports.ssh import SshSession, SshTarget


def known_hosts_path() -> Path:
    return data_dir() / "known_hosts"


def driver_for(
    address: str,
    settings: Settings,
    ssh_key: Path | None = None,
    accept_new_host_key: bool = False,
    confirm_host_key: Callable[[str, str], bool] | None = None,
) -> LinuxSshDriver:
    """A driver for ``address``; only ssh:// chargers exist so far (serial and USB drivers come next)."""
    if not address.startswith("ssh://"):
        raise UsageError(f"{address!r} is not a charger address fieldkit can update yet", "use ssh://USER@HOST[:PORT]")
    target = SshTarget.parse(address)
    return LinuxSshDriver(
        lambda: SshSession(
            target,
            known_hosts_path(),
            key_file=ssh_key,
            accept_new_host_key=accept_new_host_key,
            confirm_host_key=confirm_host_key,
            upload_streams=settings.ssh_upload_streams,
        ),
        staging_dir=settings.ssh_staging_dir,
        health_stable_s=settings.health_stable_s,
        health_timeout_s=settings.health_timeout_s,
        vendor_update_command=settings.vendor_update_command,
    )
