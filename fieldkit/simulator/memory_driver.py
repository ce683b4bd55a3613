"""The in-memory driver: a fieldkit driver straight over the simulator's device model, with no link.

It is the smallest complete driver, and the example in README's "Adding a
driver": it writes images straight into the inactive slot (as an MCU
bootloader or a DFU device does), declares what it can do in its
``Capabilities``, and passes the same contract suite as the SSH driver
(``tests/drivers/contract.py``). Its capabilities are chosen by a kind, so
the engine can be tested against every combination: a Linux-like charger
with a trial boot and a health check, an MCU without a health check or
safety facts, a DFU-like device with no read-back, no trial boot and no way
back, and a recovery console that hands the job over to another address.

Addresses: ``sim:///path/to/state?kind=mcu`` (registered under the
``fieldkit.drivers`` entry point group, as a vendor's driver would be);
``handover=ADDRESS`` names where the charger answers after its reboot.
The device's state is read from its directory at every call, so a driver
made after a power cut (a new process) sees exactly what the device kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

from fieldkit.config import Settings
from fieldkit.domain import (
    Capabilities,
    ChargerIdentity,
    ComponentInfo,
    FactSource,
    HealthCallback,
    HealthReport,
    PayloadSource,
    ProgressCallback,
    Resume,
    Revert,
    Verification,
    versions_text,
)
from fieldkit.drivers.base import Driver
from fieldkit.drivers.registry import DriverOptions
from fieldkit.errors import DeviceRefusedError, LinkLostError, UsageError
from fieldkit.fsutil import feed_hasher, sha256_file
from fieldkit.simulator.device import DeviceError, SimulatedCharger
from fieldkit.simulator.faults import FaultPlan, PowerCut

SCHEME: Final = "sim"
CHUNK_BYTES: Final = 64 * 1024
LINUX_METHODS: Final = frozenset({"rauc", "swupdate", "mender", "script"})
# A health check reads the connectors this many times and needs every reading Available: the device
# model settles them at boot, so this is a count of observations, not a wait.
HEALTH_OBSERVATIONS: Final = 5

KINDS: Final[Mapping[str, Capabilities]] = {
    "linux": Capabilities("ssh", LINUX_METHODS, Resume.DEVICE_OFFSET, Verification.DEVICE_IMAGE_HASH, True,
                          Revert.SLOT_FALLBACK, True, 50_000_000),
    "mcu": Capabilities("serial", frozenset({"mcumgr-smp"}), Resume.DEVICE_OFFSET, Verification.DEVICE_IMAGE_HASH,
                        True, Revert.SLOT_FALLBACK, False, 10_000),
    "dfu": Capabilities("usb", frozenset({"dfu"}), Resume.RESTART, Verification.STREAMED_HASH, False, Revert.NONE,
                        False, 500_000),
    "recovery": Capabilities("serial", frozenset({"uboot-ymodem"}), Resume.RESTART,
                             Verification.STREAMED_HASH, False, Revert.NONE, False, 11_000),
}  # fmt: skip
# Kinds that cannot tell whether a vehicle is charging or what their anti-rollback floor is.
SILENT_KINDS: Final = frozenset({"mcu", "dfu", "recovery"})


class MemoryDriver:
    def __init__(
        self,
        state_dir: Path,
        kind: str = "linux",
        address: str = "",
        handover_to: str | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        if kind not in KINDS:
            raise UsageError(f"no simulated driver kind {kind!r}", f"kinds: {', '.join(KINDS)}")
        self.state_dir = state_dir
        self.kind = kind
        self.address = address or f"{SCHEME}://{state_dir}?kind={kind}"
        self.handover_to = handover_to
        self.faults = faults or FaultPlan()
        self._capabilities = KINDS[kind]
        self._streamed: dict[str, tuple[str, str]] = {}  # component -> (sha256 asked for, sha256 streamed)

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def _charger(self) -> SimulatedCharger:
        if not (self.state_dir / "state.json").is_file():
            raise LinkLostError(f"no simulated charger answers at {self.address}", "start it, or check the address")
        return SimulatedCharger(self.state_dir, self.faults)

    # -- identity -----------------------------------------------------------------------

    async def identify(self) -> ChargerIdentity:
        charger = self._charger()
        components = {}
        for name, state in charger.components.items():
            running = state.running()
            pending = state.slots.get(state.pending) if state.pending else None
            components[name] = ComponentInfo(
                name,
                running.version if running else None,
                state.active,
                "pending" if state.pending is not None and state.active == state.pending else "committed",
                state.pending,
                state.install_method if self.kind == "linux" else next(iter(self.capabilities.install_methods)),
                pending.version if pending else None,
            )
        silent = self.kind in SILENT_KINDS
        sources = {"model": FactSource.DESCRIPTOR, "vendor": FactSource.DESCRIPTOR} if self.kind == "dfu" else {}
        return ChargerIdentity(
            vendor=charger.identity["vendor"],
            model=charger.identity["model"],
            hardware_revision=charger.identity["hardware_revision"],
            serial=charger.identity["serial"],
            address=self.address,
            components=components,
            security_version_floor=None if silent else charger.security_version_floor,
            transaction_active=None if silent else charger.transaction_active,
            meter_wh=charger.meter_wh,
            connector_statuses=tuple(c["status"] for c in charger.connectors),
            boot_id=str(charger.boot_count),
            profile=f"simulated {self.kind}",
            fact_sources=sources,
        )

    async def installed(self, component: str, version: str) -> bool | None:
        state = self._charger().components.get(component)
        if state is None or state.pending is None:
            return False
        image = state.slots.get(state.pending)
        return image is not None and image.version == version

    # -- transfer and verification ---------------------------------------------------------

    async def transfer(self, component: str, payload: PayloadSource, on_progress: ProgressCallback | None) -> int:
        charger = self._charger()
        if component not in charger.components:
            raise DeviceRefusedError(f"this charger has no component {component!r}")
        if charger.components[component].pending is not None:
            raise DeviceRefusedError(
                f"{component} already has an image waiting to boot", "finish or roll back the job that installed it"
            )
        offset = 0
        if self.capabilities.resume == Resume.DEVICE_OFFSET:
            offset = charger.upload_offset(component, payload.sha256)
            offset = offset if offset <= payload.size_bytes else 0
        if offset == 0:
            charger.begin_install(component, payload.sha256)
        digest = hashlib.sha256()
        with payload.path.open("rb") as source:
            source.seek(payload.offset)
            feed_hasher(source, digest, offset)  # what an earlier run streamed: the laptop's own copy
            position = offset
            if on_progress is not None:
                on_progress(position)
            while position < payload.size_bytes:
                data = source.read(min(CHUNK_BYTES, payload.size_bytes - position))
                try:
                    charger.write_slot(component, position, data)
                except PowerCut as exc:
                    raise _went_dark(exc) from exc
                digest.update(data)
                position += len(data)
                if on_progress is not None:
                    on_progress(position)
                await asyncio.sleep(0)  # a transfer is where a job is cancelled: let the loop run
        self._streamed[component] = (payload.sha256, digest.hexdigest())
        return payload.size_bytes - offset

    async def verify(self, component: str, payload: PayloadSource) -> str:
        if self.capabilities.verification == Verification.STREAMED_HASH:
            streamed = self._streamed.get(component)
            if streamed is None or streamed[0] != payload.sha256:  # resumed after the transfer: hash the copy again
                streamed = (payload.sha256, sha256_file(payload.path, payload.offset, payload.size_bytes)[1])
            actual, what = streamed[1], "the laptop's SHA-256 of what it streamed"
        else:
            actual, what = self._charger().slot_sha256(component), "the image hash the charger reports"
        if not hmac.compare_digest(actual, payload.sha256):
            raise DeviceRefusedError(
                f"{what} does not match the bundle's for {component}", "the copy was damaged; transfer it again"
            )
        return f"{self.capabilities.verification.value}: {actual[:16]}…"

    # -- install, reboot, health ----------------------------------------------------------------

    async def activate(self, component: str, sha256: str, install_method: str) -> None:
        if install_method not in self.capabilities.install_methods:
            raise DeviceRefusedError(f"this charger cannot install with {install_method!r}")
        try:
            self._charger().finish_install(component, sha256)
        except DeviceError as exc:
            raise DeviceRefusedError(exc.message, exc.hint) from exc
        except PowerCut as exc:
            raise _went_dark(exc) from exc

    async def reboot(self) -> str | None:
        charger = self._charger()
        try:
            charger.power_on()
        except PowerCut as exc:
            raise _went_dark(exc) from exc
        if not self.capabilities.trial_boot:
            # No trial boot: what boots is kept. The device model's trial is ended here, as such a device would.
            for name, state in charger.components.items():
                if state.pending is not None and state.active == state.pending:
                    charger.mark_good(name)
        return self.handover_to

    async def health(
        self, expected_versions: dict[str, str], baseline_meter_wh: int, on_poll: HealthCallback | None = None
    ) -> HealthReport:
        charger = self._charger()
        running = {n: (s.running().version if s.running() else None) for n, s in charger.components.items()}  # type: ignore[union-attr]
        readings = [[c["status"] for c in charger.observed_connectors()] for _ in range(HEALTH_OBSERVATIONS)]
        statuses = readings[-1]
        problems = []
        if any(running.get(name) != version for name, version in expected_versions.items()):
            problems.append(f"runs {versions_text(running)}, expected {versions_text(expected_versions)}")
        if any(status not in ("Available", "Charging") for reading in readings for status in reading):
            problems.append(f"connectors not steadily available: {' / '.join(', '.join(r) for r in readings)}")
        if charger.meter_wh < baseline_meter_wh:
            problems.append(f"meter register went back from {baseline_meter_wh} to {charger.meter_wh} Wh")
        detail = (
            "; ".join(problems)
            or f"runs {versions_text(running)}, connectors {', '.join(statuses)} in {HEALTH_OBSERVATIONS} readings"
        )
        return HealthReport(not problems, detail, statuses, running, charger.meter_wh)

    # -- commit and roll back ----------------------------------------------------------------------

    async def commit(self, install_methods: Mapping[str, str], expected_versions: Mapping[str, str]) -> None:
        charger = self._charger()
        for name in install_methods:
            state = charger.components[name]
            running = state.running()
            if state.pending is None and running is not None and running.version == expected_versions.get(name):
                continue  # committed already (a resumed job commits twice)
            if state.pending is None or state.active != state.pending:
                raise DeviceRefusedError(f"{name} is not running a new image on trial: nothing to commit")
            if running is None or running.version != expected_versions.get(name):
                raise DeviceRefusedError(f"{name} runs {running.version if running else None}, not the new version")
            charger.mark_good(name)

    async def rollback(
        self, install_methods: Mapping[str, str], previous_versions: Mapping[str, str | None] | None = None
    ) -> str:
        charger = self._charger()
        pending = [name for name in install_methods if charger.components[name].pending is not None]
        if not pending:
            if previous_versions is None:
                raise DeviceRefusedError("nothing is pending on this charger: nothing to roll back")
            return "nothing was installed: nothing to undo"
        if self.capabilities.revert == Revert.NONE:
            raise DeviceRefusedError("this charger keeps no previous image to go back to", "recover it by hand")
        on_trial = [n for n in pending if charger.components[n].active == charger.components[n].pending]
        for name in pending:
            charger.mark_bad(name)  # the pending image only: the committed one is never touched
        if on_trial:
            charger.power_on()
            return f"abandoned {', '.join(pending)} and rebooted into the committed image"
        return f"abandoned {', '.join(pending)} before it booted"

    async def discard(self, sha256s: Sequence[str]) -> None:
        """Nothing is staged: images go straight into their slot."""

    def close(self) -> None:
        """No link to let go of."""


def _went_dark(exc: PowerCut) -> LinkLostError:
    """A power cut, as the laptop sees it: the charger stops answering."""
    return LinkLostError(f"the charger went dark: {exc}", "power it up, then resume")


def open_driver(address: str, settings: Settings, options: DriverOptions) -> Driver:
    """The ``sim`` entry point: ``sim:///STATE_DIR[?kind=linux|mcu|dfu|recovery][&handover=ADDRESS]``."""
    del settings, options  # no link to tune, no key to use
    parts = urlsplit(address)
    query = parse_qs(parts.query)
    if parts.scheme != SCHEME or not parts.path:
        raise UsageError(f"{address!r} is not a simulated charger address", "use sim:///STATE_DIR?kind=mcu")
    return MemoryDriver(
        Path(parts.path),
        query.get("kind", ["linux"])[0],
        address,
        query.get("handover", [None])[0],
    )
