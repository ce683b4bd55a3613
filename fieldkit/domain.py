"""What fieldkit knows about a charger and what a driver can do with it.

Shared by the drivers that report these facts, the engine and preflight
that act on them, and the UIs that show them; it depends on nothing else in
fieldkit, so the UIs need no driver module to name a charger's identity.

*Unknown* is an answer here, never a default: a fact a charger cannot tell
is ``None`` (or absent), and preflight asks the technician about the ones
that matter for safety.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

# The three shapes of link a driver speaks over; a bundle's component lists its install methods per shape.
Transport = Literal["ssh", "serial", "usb"]


class FactSource(StrEnum):
    """Where a fact about a charger came from."""

    DEVICE = "reported by the charger"  # its own status/identity interface (a helper, rauc status, SMP)
    DESCRIPTOR = "read from a descriptor"  # a file or USB descriptor the profile points at
    PROFILE = "given by the charger profile"  # fixed by the profile that matched, not read from the charger
    TECHNICIAN = "confirmed by the technician"  # checked on site and audited


NO_FACT_SOURCES: Final[Mapping[str, FactSource]] = MappingProxyType({})


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
    # Where each identity and safety fact came from (field name -> source); a fact not named here was
    # reported by the charger itself.
    fact_sources: Mapping[str, FactSource] = field(default_factory=lambda: NO_FACT_SOURCES)

    def source_of(self, fact: str) -> FactSource:
        return self.fact_sources.get(fact, FactSource.DEVICE)

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
# Told each interim reading of a health check (from the driver's thread); returns False to stop the check
# (the technician cancelled), which then ends unhealthy at once instead of waiting out its timeout.
HealthCallback = Callable[[HealthReport], bool]
HEALTH_STOP_CHECK_S: Final = 0.1


def versions_text(versions: Mapping[str, str | None]) -> str:
    """``rootfs 2.5.0, app 1.2.0``: component versions as a technician reads them (no Python dict syntax)."""
    return ", ".join(f"{name} {version or 'unknown'}" for name, version in versions.items()) or "nothing"


def health_pause(on_poll: HealthCallback | None, reading: HealthReport, seconds: float) -> bool:
    """Report ``reading`` and wait ``seconds`` between two polls; False as soon as the check is to stop."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        if on_poll is not None and not on_poll(reading):
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, HEALTH_STOP_CHECK_S))


def health_cancelled(reading: HealthReport) -> HealthReport:
    return HealthReport(
        False, f"cancelled by the technician during the health check ({reading.detail})",
        reading.connector_statuses, reading.running_versions, reading.meter_wh,
    )  # fmt: skip


@dataclass(frozen=True)
class PayloadSource:
    """A payload as it lies inside its (verified) bundle: streamed from there, never extracted."""

    path: Path
    offset: int
    size_bytes: int
    sha256: str
    version: str | None = None  # the bundle's version for it: a driver that can read the image's own checks it

    @classmethod
    def whole_file(cls, path: Path, sha256: str, version: str | None = None) -> PayloadSource:
        return cls(path, 0, path.stat().st_size, sha256, version)


class Verification(StrEnum):
    """How a driver proves the image on the charger is the one in the bundle."""

    SHA256_READBACK = "sha256 read back from the charger"
    DEVICE_IMAGE_HASH = "image hash reported by the charger"
    CRC32_SEGMENTS = "crc32 of every segment checked by the charger"
    STREAMED_HASH = "no read-back: SHA-256 of what the laptop streamed"


class Resume(StrEnum):
    """How an interrupted transfer continues."""

    STAGED_PREFIX = "the staged partial file, its prefix re-hashed"
    DEVICE_OFFSET = "at the offset the charger reports"
    SEGMENTS = "from the first segment not yet written"
    RESTART = "from the start"


class Revert(StrEnum):
    """How the previous image comes back when a new one fails."""

    SLOT_FALLBACK = "the updater or bootloader falls back to the other slot"
    # MCUboot: a test request cannot be withdrawn, so an install abandoned before it booted runs once, unconfirmed,
    # before the reset that goes back; a running unconfirmed image is left at the next reset.
    AFTER_TRIAL = "the bootloader goes back at the next reset; an image marked for test boots once first"
    NONE = "no way back: the previous image is overwritten"


@dataclass(frozen=True)
class Capabilities:
    """What a driver can do, declared honestly; the engine and preflight branch on it."""

    transport: Transport  # the shape of link this driver speaks over (a simulated one: the shape it stands for)
    install_methods: frozenset[str]  # the manifest's install methods this driver can carry out
    resume: Resume
    verification: Verification
    trial_boot: bool  # a new image boots on trial and stays only once committed
    revert: Revert
    health_check: bool  # the charger reports its health (connectors, meter) after a reboot
    link_rate_bytes_per_s: int  # what to expect of the link, for time estimates
