"""A simulated charger whose whole state lives in a directory: the device model the front-ends share.

Layout of the state directory::

    state.json            identity, per-component boot state, connectors, meter, transactions
    slots/<component>/A   image in slot A (a file, like a flash partition)
    slots/<component>/B   image in slot B

It behaves like the A/B hardware it stands for:

- an image is installed into the inactive slot, and is checked (SHA-256 as
  announced, header for this model and component, security version not below
  the anti-rollback floor) before it is marked to be tried on the next boot;
- every boot verifies the image it is about to run (verify-before-boot); a
  pending image gets ``MAX_BOOT_ATTEMPTS`` tries, after which the bootloader
  falls back to the last committed image, as does an image that fails
  verification;
- ``mark_good`` commits the running image and raises the anti-rollback floor;
  ``mark_bad`` abandons it, so the next boot runs the committed one;
- state.json is replaced atomically; slot writes are not, so a power cut in
  the middle of writing a slot leaves a torn image there, which the next boot
  refuses to run.

A process killed with SIGKILL is a power cut: reopening the directory and
calling ``power_on`` boots as the hardware would.

The parts live in modules of their own: the slots and what writes them
(flash.py), the boot decision (bootloader.py), connectors, meter and
transactions (charging.py). This module holds them together and keeps
state.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Final

from fieldkit.fsutil import atomic_write_bytes
from fieldkit.simulator.bootloader import MAX_BOOT_ATTEMPTS, BootRecord, boot
from fieldkit.simulator.catalog import SimulatedModel
from fieldkit.simulator.charging import ChargingSessions
from fieldkit.simulator.faults import FaultPlan
from fieldkit.simulator.flash import ComponentState, DeviceError, Flash, Slot, SlotImage, other_slot
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.mcuboot_image import mcuboot_image

__all__ = ["DeviceError", "SimulatedCharger"]

FACTORY_IMAGE_BYTES: Final = 64 * 1024


class SimulatedCharger:
    def __init__(self, state_dir: Path, faults: FaultPlan | None = None) -> None:
        self.state_dir = state_dir
        self._faults = faults or FaultPlan()
        raw = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
        self.identity: dict[str, str] = raw["identity"]
        components = {name: ComponentState.from_json(c) for name, c in raw["components"].items()}
        self.flash = Flash(state_dir, components, self._faults, self.save)
        self.charging = ChargingSessions(raw["connectors"], raw["meter_wh"], raw["transactions"], self._faults)
        self.security_version_floor: int = raw["security_version_floor"]
        self.boot_count: int = raw["boot_count"]
        self.last_boot = BootRecord(**raw["last_boot"])

    # -- creation and persistence ----------------------------------------------

    @classmethod
    def create(
        cls,
        state_dir: Path,
        model: SimulatedModel,
        serial: str,
        hardware_revision: str | None = None,
        connectors: int = 2,
    ) -> SimulatedCharger:
        """A factory-fresh charger: every component's shipped image in slot A, committed."""
        if (state_dir / "state.json").exists():
            raise DeviceError(
                "exists",
                f"a simulated charger already lives in {state_dir}",
                "use it as it is, or choose another --state directory",
            )
        components: dict[str, Any] = {}
        for component in model.components:
            slot_dir = state_dir / "slots" / component.name
            slot_dir.mkdir(parents=True, exist_ok=True)
            header = ImageHeader(
                model.vendor, model.model, component.name, model.installed_version, model.security_version_floor
            )
            image = header.to_bytes() + hashlib.sha256(header.to_bytes()).digest() * (FACTORY_IMAGE_BYTES // 32)
            if component.install_method == "mcumgr-smp":  # an MCU board boots MCUboot images
                image = mcuboot_image(image, model.installed_version)
            atomic_write_bytes(slot_dir / "A", image)
            (slot_dir / "B").write_bytes(b"")
            factory = SlotImage(
                model.installed_version, model.security_version_floor, hashlib.sha256(image).hexdigest(), len(image)
            )
            components[component.name] = ComponentState(
                slots={"A": factory, "B": None}, install_method=component.install_method
            ).to_json()
        document = {
            "identity": {
                "vendor": model.vendor,
                "model": model.model,
                "hardware_revision": hardware_revision or model.hardware_revisions[-1],
                "serial": serial,
            },
            "components": components,
            "security_version_floor": model.security_version_floor,
            "boot_count": 0,
            "connectors": [{"id": i + 1, "status": "Unavailable"} for i in range(connectors)],
            "meter_wh": 0,
            "transactions": [],
            "last_boot": {"result": "ok", "detail": "factory state"},
        }
        atomic_write_bytes(state_dir / "state.json", json.dumps(document, indent=2).encode())
        charger = cls(state_dir)
        charger.power_on()
        return charger

    def save(self) -> None:
        document = {
            "identity": self.identity,
            "components": {name: c.to_json() for name, c in self.components.items()},
            "security_version_floor": self.security_version_floor,
            "boot_count": self.boot_count,
            "connectors": self.connectors,
            "meter_wh": self.meter_wh,
            "transactions": self.transactions,
            "last_boot": vars(self.last_boot),
        }
        atomic_write_bytes(self.state_dir / "state.json", json.dumps(document, indent=2).encode())

    # -- the parts, as the front-ends read them -------------------------------------

    @property
    def faults(self) -> FaultPlan:
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan) -> None:
        """A new fault plan reaches every part (a front-end sets it for the faults its link carries)."""
        self._faults = self.flash.faults = self.charging.faults = plan

    @property
    def components(self) -> dict[str, ComponentState]:
        return self.flash.components

    @property
    def connectors(self) -> list[dict[str, Any]]:
        return self.charging.connectors

    @property
    def meter_wh(self) -> int:
        return self.charging.meter_wh

    @property
    def transactions(self) -> list[dict[str, Any]]:
        return self.charging.transactions

    @property
    def staging_dir(self) -> Path:
        """Where this charger takes staged images (SFTP): its own, kept across reboots like /var/tmp."""
        return self.state_dir / "staging"

    # -- installing (flash.py) ----------------------------------------------------------

    def slot_path(self, component: str, slot: str) -> Path:
        return self.flash.slot_path(component, slot)

    def inactive_slot(self, component: str) -> Slot:
        return self.flash.inactive_slot(component)

    def begin_install(self, component: str, sha256: str | None = None) -> Path:
        return self.flash.begin_install(component, sha256)

    def upload_offset(self, component: str, sha256: str) -> int:
        return self.flash.upload_offset(component, sha256)

    def slot_sha256(self, component: str) -> str:
        return self.flash.slot_sha256(component)

    def write_slot(self, component: str, offset: int, data: bytes) -> None:
        self.flash.write_slot(component, offset, data)

    def finish_install(self, component: str, expected_sha256: str) -> SlotImage:
        """Check the written image and mark it to be tried on the next boot."""
        self.faults.check_phase("install")
        return self.flash.finish_install(component, expected_sha256, self._header_problem)

    def _header_problem(self, component: str, header: ImageHeader | None) -> tuple[str, str] | None:
        if header is None:
            return ("bad-image", f"the {component} image has no valid header")
        if header.model != self.identity["model"] or header.component != component:
            return (
                "wrong-image",
                f"the image is for {header.model}/{header.component}, not {self.identity['model']}/{component}",
            )
        if header.security_version < self.security_version_floor:
            return (
                "anti-rollback",
                f"security version {header.security_version} is below the floor {self.security_version_floor}",
            )
        return None

    # -- booting (bootloader.py) ------------------------------------------------------

    def power_on(self, max_boot_attempts: int = MAX_BOOT_ATTEMPTS) -> BootRecord:
        """What the bootloader does after reset, then the connectors as the booted images bring them up.

        ``max_boot_attempts``: boots an image on trial gets (MCUboot gives one).
        """
        self.faults.check_phase("reboot")
        self.boot_count += 1
        self.last_boot = boot(self.components, self.verified, max_boot_attempts)
        self._settle_connectors()
        self.save()
        return self.last_boot

    def verified(self, component: str, slot: str) -> bool:
        """Would the bootloader start this slot's image (whole, as hashed, made for this model)?"""
        return self.flash.verified(component, slot, self.identity["model"])

    def _settle_connectors(self) -> None:
        unhealthy = self.faults.never_available and any(s.pending is not None for s in self.components.values())
        self.charging.settle(self.last_boot.result == "bricked", unhealthy)

    def observed_connectors(self) -> list[dict[str, Any]]:
        """Connector statuses as a health check reads them, one observation per call (see charging.py)."""
        trial = any(s.pending is not None and s.active == s.pending for s in self.components.values())
        return self.charging.observed(trial)

    # -- commit / roll back -------------------------------------------------------

    def mark_good(self, component: str) -> None:
        self.faults.check_phase("commit")
        state = self.flash.component(component)
        if state.pending is None or state.active != state.pending:
            raise DeviceError("nothing-to-commit", f"{component} is not running a pending image")
        state.committed, state.pending, state.boot_attempts = state.active, None, 0
        image = state.running()
        assert image is not None
        self.security_version_floor = max(self.security_version_floor, image.security_version)
        self.save()

    def mark_bad(self, component: str) -> None:
        state = self.flash.component(component)
        state.pending, state.boot_attempts = None, 0
        self.save()

    def mark_committed_bad(self, name: str) -> None:
        """The committed image is declared bad: the bootloader will not start it again.

        What RAUC's ``mark-bad booted`` does to a good running slot. If the
        other slot holds nothing verified, the next boot finds no image.
        """
        state = self.flash.component(name)
        bad = state.committed
        state.slots[bad] = None
        state.committed, state.pending, state.boot_attempts = other_slot(bad), None, 0
        self.save()

    # -- charging sessions (charging.py) ----------------------------------------------

    @property
    def transaction_active(self) -> bool:
        return self.charging.transaction_active

    def start_transaction(self, connector: int) -> str:
        tx_id = self.charging.start(connector)
        self._settle_connectors()
        self.save()
        return tx_id

    def deliver_energy(self, wh: int) -> None:
        self.charging.deliver(wh)
        self.save()

    def stop_transaction(self, tx_id: str) -> None:
        self.charging.stop(tx_id)
        self._settle_connectors()
        self.save()

    # -- reporting --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "components": {
                name: {
                    "running_version": s.running().version if s.running() else None,  # type: ignore[union-attr]
                    "active_slot": s.active,
                    "committed_slot": s.committed,
                    "state": "pending" if s.pending is not None and s.active == s.pending else "committed",
                    "pending_slot": s.pending,
                    "boot_attempts": s.boot_attempts,
                    "install_method": s.install_method,
                }
                for name, s in self.components.items()
            },
            "security_version_floor": self.security_version_floor,
            "boot_count": self.boot_count,
            "last_boot": vars(self.last_boot),
            "connectors": self.connectors,
            "meter_wh": self.meter_wh,
            "transaction_active": self.transaction_active,
            "transactions": len(self.transactions),
        }
