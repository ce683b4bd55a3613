"""From a charger address to a driver: the one place a protocol is picked for an address.

An address starts with its scheme (``ssh://USER@HOST[:PORT]``); each scheme
has one factory. fieldkit's own drivers are listed here; a vendor adds one by
naming a factory in the ``fieldkit.drivers`` entry point group of its
package (``scheme = "package.module:factory"``), with the signature of
``DriverFactory``. The simulator's in-memory driver (``sim://``) is added that
way too, so the path third-party drivers take is exercised by the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Final, Protocol, cast

from fieldkit.config import Settings, data_dir
from fieldkit.drivers.base import Driver
from fieldkit.errors import UsageError

ENTRY_POINT_GROUP: Final = "fieldkit.drivers"


@dataclass(frozen=True)
class DriverOptions:
    """What the technician chose for this session's links (each driver takes what applies to it)."""

    ssh_key: Path | None = None
    accept_new_host_key: bool = False
    confirm_host_key: Callable[[str, str], bool] | None = None

    def journaled(self) -> dict[str, str]:
        """What a resumed job needs to reach the charger the same way: a key's path, never a secret."""
        return {"ssh_key": str(self.ssh_key.resolve())} if self.ssh_key else {}

    def resumed_with(self, journaled: Mapping[str, str]) -> DriverOptions:
        """These options, with what the job journaled (its key) taking precedence."""
        key = journaled.get("ssh_key")
        return replace(self, ssh_key=Path(key)) if key else self


class DriverFactory(Protocol):
    def __call__(self, address: str, settings: Settings, options: DriverOptions) -> Driver: ...


def known_hosts_path() -> Path:
    return data_dir() / "known_hosts"


def _linux_ssh(address: str, settings: Settings, options: DriverOptions) -> Driver:
    from fieldkit.drivers.linux_ssh import LinuxSshDriver  # paramiko loads only when an SSH charger is used
    from fieldkit.transports.ssh import SshSession, SshTarget

    target = SshTarget.parse(address)
    return LinuxSshDriver(
        lambda: SshSession(
            target,
            known_hosts_path(),
            key_file=options.ssh_key,
            accept_new_host_key=options.accept_new_host_key,
            confirm_host_key=options.confirm_host_key,
            upload_streams=settings.ssh_upload_streams,
        ),
        staging_dir=settings.ssh_staging_dir,
        health_stable_s=settings.health_stable_s,
        health_timeout_s=settings.health_timeout_s,
        vendor_update_command=settings.vendor_update_command,
    )


def _smp(address: str, settings: Settings, options: DriverOptions) -> Driver:
    del options  # a serial line has no keys or host keys
    from fieldkit.drivers.smp import SmpDriver  # the smp package loads only when an SMP board is used
    from fieldkit.transports.byte_stream import open_byte_stream

    return SmpDriver(address, open_byte_stream, health_stable_s=settings.health_stable_s)


BUILT_IN: Final[dict[str, DriverFactory]] = {
    "ssh": _linux_ssh,
    "smp+serial": _smp,
    "smp+socket": _smp,
    "smp+rfc2217": _smp,
}


def scheme_of(address: str) -> str:
    scheme, separator, _ = address.partition("://")
    return scheme.lower() if separator else ""


def factories() -> dict[str, DriverFactory]:
    """Every scheme fieldkit can reach: its own, then those packages add (never replacing its own)."""
    found: dict[str, DriverFactory] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in BUILT_IN:
            found[entry.name] = cast(DriverFactory, entry.load())
    return {**found, **BUILT_IN}


def driver_for(address: str, settings: Settings, options: DriverOptions | None = None) -> Driver:
    """A driver for ``address``, by its scheme."""
    scheme = scheme_of(address)
    factory = BUILT_IN.get(scheme) or (factories().get(scheme) if scheme else None)
    if factory is None:
        known = ", ".join(f"{name}://" for name in sorted(factories()))
        raise UsageError(
            f"{address!r} is not a charger address fieldkit can reach",
            f"addresses start with one of: {known} (ssh://USER@HOST[:PORT] for a Linux charger)",
        )
    return factory(address, settings, options or DriverOptions())
