"""What every driver offers the update engine, whatever the protocol underneath.

Methods are async: drivers run their blocking transports in threads. Every
method either does what it says or raises a FieldkitError (TransportError
for the link, DeviceRefusedError for the charger saying no).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ComponentInfo:
    name: str
    version: str | None
    active_slot: str
    state: str  # "committed" or "pending" (running an image not yet committed)
    pending_slot: str | None = None  # an installed image waiting for (or in) its trial boot
    install_method: str | None = None  # the charger's updater for it, when the charger says (rauc, mender, ...)
    pending_version: str | None = None  # the version in pending_slot, when the charger says


@dataclass(frozen=True)
class ChargerIdentity:
    vendor: str
    model: str
    hardware_revision: str
    serial: str
    address: str
    components: dict[str, ComponentInfo]
    security_version_floor: int | None  # None: the charger cannot tell (unknown is never assumed safe)
    transaction_active: bool | None  # None: the charger cannot tell whether a vehicle is charging
    meter_wh: int = 0
    connector_statuses: tuple[str, ...] = ()  # OCPP connector statuses, when the charger reports them
    boot_id: str | None = None  # changes on every boot: how a reboot is recognised
    profile: str = ""  # the charger profile the facts were read with
    staging_dir: str | None = None
    staging_problem: str | None = None  # why an image cannot be staged (not writable, too little space)
    staging_free_bytes: int | None = None

    @property
    def unknown_safety_facts(self) -> list[str]:
        """Facts preflight needs that the charger could not report."""
        unknown = []
        if self.transaction_active is None:
            unknown.append("transaction")
        if self.security_version_floor is None:
            unknown.append("security_version_floor")
        if not self.hardware_revision:
            unknown.append("hardware_revision")
        return unknown


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: str
    connector_statuses: list[str] = field(default_factory=list)
    running_versions: dict[str, str | None] = field(default_factory=dict)
    meter_wh: int = 0


ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class PayloadSource:
    """A payload as it lies inside its (verified) bundle: streamed from there, never extracted."""

    path: Path
    offset: int
    size_bytes: int
    sha256: str

    @classmethod
    def whole_file(cls, path: Path, sha256: str) -> PayloadSource:
        return cls(path, 0, path.stat().st_size, sha256)


class Driver(Protocol):
    supported_install_methods: frozenset[str]  # manifest install_method values this driver can carry out

    async def identify(self) -> ChargerIdentity: ...

    async def transfer(self, component: str, payload: PayloadSource, on_progress: ProgressCallback | None) -> int:
        """Stage ``image`` on the charger, resuming a verified partial copy; returns bytes sent."""
        ...

    async def verify(self, component: str, sha256: str) -> None: ...

    async def activate(self, component: str, sha256: str, install_method: str) -> None:
        """Install the staged, verified image through the updater ``install_method`` names."""
        ...

    async def reboot(self) -> None: ...

    async def health(self, expected_versions: dict[str, str], baseline_meter_wh: int) -> HealthReport: ...

    async def commit(self, install_methods: Mapping[str, str], expected_versions: Mapping[str, str]) -> None:
        """Make the running trial images permanent; ``install_methods`` maps component -> install method.

        Only an image running the expected version is committed. Safe to
        repeat: a component already committed is left alone (a resumed job may
        commit twice).
        """
        ...

    async def rollback(
        self, install_methods: Mapping[str, str], previous_versions: Mapping[str, str | None] | None = None
    ) -> str:
        """Go back to the last known good image of these components; returns what was done.

        ``previous_versions`` are what the charger ran before the job (None:
        no job is known). Never marks a good image bad: an install that has
        not booted is abandoned by making the running slot primary again; a
        running new image is marked bad only while the other slot is good.
        With nothing pending, nothing changes (DeviceRefusedError for a
        rollback asked for by hand).
        """
        ...

    async def discard(self, sha256s: Sequence[str]) -> None:
        """Remove what was staged on the charger for these images once a job has ended.

        Chargers keep staged images on small flash; a finished job must not
        leave hundreds of MiB behind. Safe to repeat; nothing to do for a
        driver that writes straight into a slot.
        """
        ...

    def close(self) -> None:
        """Let go of the link; safe to call twice, and after the link was lost."""
        ...
