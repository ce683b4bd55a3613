"""What every driver offers the update engine, whatever the protocol underneath.

Methods are async: drivers run their blocking transports in threads. Every
method either does what it says or raises a FieldkitError (TransportError
for the link, DeviceRefusedError for the charger saying no).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ComponentInfo:
    name: str
    version: str | None
    active_slot: str
    state: str  # "committed" or "pending"


@dataclass(frozen=True)
class ChargerIdentity:
    vendor: str
    model: str
    hardware_revision: str
    serial: str
    address: str
    components: dict[str, ComponentInfo]
    security_version_floor: int
    transaction_active: bool


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    detail: str
    connector_statuses: list[str] = field(default_factory=list)
    running_versions: dict[str, str | None] = field(default_factory=dict)
    meter_wh: int = 0


ProgressCallback = Callable[[int], None]


class Driver(Protocol):
    async def identify(self) -> ChargerIdentity: ...

    async def transfer(self, component: str, image: Path, sha256: str, on_progress: ProgressCallback | None) -> int:
        """Stage ``image`` on the charger, resuming a verified partial copy; returns bytes sent."""
        ...

    async def verify(self, component: str, sha256: str) -> None: ...

    async def activate(self, component: str, sha256: str) -> None: ...

    async def reboot(self) -> None: ...

    async def health(self, expected_versions: dict[str, str], baseline_meter_wh: int) -> HealthReport: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...
