"""A simulated charger whose whole state lives in a directory.

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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from fieldkit.errors import FieldkitError
from fieldkit.fsutil import atomic_write_bytes, sha256_file
from fieldkit.simulator.catalog import SimulatedModel
from fieldkit.simulator.faults import FaultPlan, PowerCut
from fieldkit.simulator.image import ImageHeader, read_image_header

MAX_BOOT_ATTEMPTS: Final = 3
SLOTS: Final = ("A", "B")
Slot = Literal["A", "B"]
# OCPP 1.6 ChargePointStatus names (the subset a simulated connector uses).
ConnectorStatus = Literal["Available", "Preparing", "Charging", "Faulted", "Unavailable"]
FACTORY_IMAGE_BYTES: Final = 64 * 1024


class DeviceError(FieldkitError):
    """The simulated charger refused an operation, as the real one would."""

    exit_code = 9

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


def _other(slot: str) -> Slot:
    return "B" if slot == "A" else "A"


@dataclass
class SlotImage:
    version: str
    security_version: int
    sha256: str
    size_bytes: int


@dataclass
class ComponentState:
    committed: Slot = "A"
    active: Slot = "A"
    pending: Slot | None = None
    boot_attempts: int = 0
    slots: dict[str, SlotImage | None] = field(default_factory=lambda: {"A": None, "B": None})
    install_method: str = "rauc"  # the updater that owns this component (rauc, swupdate, mender, script)
    upload_sha256: str | None = None  # the image being written into the inactive slot, until it is installed

    def running(self) -> SlotImage | None:
        return self.slots.get(self.active)


@dataclass
class BootRecord:
    result: Literal["ok", "fallback", "bricked"]
    detail: str = ""


class SimulatedCharger:
    def __init__(self, state_dir: Path, faults: FaultPlan | None = None) -> None:
        self.state_dir = state_dir
        self.faults = faults or FaultPlan()
        raw = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))
        self.identity: dict[str, str] = raw["identity"]
        self.components: dict[str, ComponentState] = {
            name: ComponentState(
                committed=c["committed"],
                active=c["active"],
                pending=c["pending"],
                boot_attempts=c["boot_attempts"],
                slots={s: SlotImage(**info) if info else None for s, info in c["slots"].items()},
                install_method=c.get("install_method", "rauc"),
                upload_sha256=c.get("upload_sha256"),
            )
            for name, c in raw["components"].items()
        }
        self.security_version_floor: int = raw["security_version_floor"]
        self.boot_count: int = raw["boot_count"]
        self.connectors: list[dict[str, Any]] = raw["connectors"]
        self.meter_wh: int = raw["meter_wh"]
        self.transactions: list[dict[str, Any]] = raw["transactions"]
        self.last_boot = BootRecord(**raw["last_boot"])
        self._flap_observations = 0
        self._write_digest: tuple[str, Any, int] | None = None  # (component, running SHA-256, bytes hashed)

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
            atomic_write_bytes(slot_dir / "A", image)
            (slot_dir / "B").write_bytes(b"")
            components[component.name] = {
                "committed": "A",
                "active": "A",
                "pending": None,
                "boot_attempts": 0,
                "install_method": component.install_method,
                "slots": {
                    "A": {
                        "version": model.installed_version,
                        "security_version": model.security_version_floor,
                        "sha256": hashlib.sha256(image).hexdigest(),
                        "size_bytes": len(image),
                    },
                    "B": None,
                },
            }
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
            "components": {
                name: {
                    "committed": c.committed,
                    "active": c.active,
                    "pending": c.pending,
                    "boot_attempts": c.boot_attempts,
                    "install_method": c.install_method,
                    "upload_sha256": c.upload_sha256,
                    "slots": {s: (vars(i) if i else None) for s, i in c.slots.items()},
                }
                for name, c in self.components.items()
            },
            "security_version_floor": self.security_version_floor,
            "boot_count": self.boot_count,
            "connectors": self.connectors,
            "meter_wh": self.meter_wh,
            "transactions": self.transactions,
            "last_boot": vars(self.last_boot),
        }
        atomic_write_bytes(self.state_dir / "state.json", json.dumps(document, indent=2).encode())

    @property
    def staging_dir(self) -> Path:
        """Where this charger takes staged images (SFTP): its own, kept across reboots like /var/tmp."""
        return self.state_dir / "staging"

    def slot_path(self, component: str, slot: str) -> Path:
        return self.state_dir / "slots" / component / slot

    def _component(self, name: str) -> ComponentState:
        try:
            return self.components[name]
        except KeyError as exc:
            raise DeviceError(
                "no-such-component",
                f"this charger has no component {name!r}",
                f"components: {', '.join(self.components)}",
            ) from exc

    # -- installing ---------------------------------------------------------------

    def inactive_slot(self, component: str) -> Slot:
        return _other(self._component(component).active)

    def begin_install(self, component: str, sha256: str | None = None) -> Path:
        """Forget whatever is in the inactive slot and return its path for writing.

        ``sha256``: the image about to be written, remembered (as an SMP upload session is) so that a
        write cut short can continue where it stopped (``upload_offset``).
        """
        state = self._component(component)
        if state.pending is not None:
            raise DeviceError(
                "install-pending",
                f"{component} already has an image waiting to boot",
                "reboot and mark it good or bad first",
            )
        slot = _other(state.active)
        state.slots[slot] = None
        state.upload_sha256 = sha256
        self.save()  # the slot is invalid before the first byte is written
        self.slot_path(component, slot).write_bytes(b"")
        return self.slot_path(component, slot)

    def upload_offset(self, component: str, sha256: str) -> int:
        """How much of the image ``sha256`` the inactive slot already holds (0: start again)."""
        state = self._component(component)
        if state.pending is not None or state.upload_sha256 != sha256:
            return 0
        path = self.slot_path(component, _other(state.active))
        return path.stat().st_size if path.exists() else 0

    def slot_sha256(self, component: str) -> str:
        """The SHA-256 of what the inactive slot holds, as a device reports an image's hash."""
        return sha256_file(self.slot_path(component, self.inactive_slot(component)))[1]

    def write_slot(self, component: str, offset: int, data: bytes) -> None:
        """Write image bytes at ``offset`` of the inactive slot, applying the fault plan."""
        path = self.slot_path(component, self.inactive_slot(component))
        data = self.faults.corrupt(offset, data)
        cut = self.faults.power_cut_within(offset, len(data))
        written = data if cut is None else data[:cut]
        with path.open("r+b") as handle:
            handle.seek(offset)
            handle.write(written)
        # Hash what lands as it lands (sequential writes), so finishing needs no second pass over flash.
        if offset == 0:
            self._write_digest = (component, hashlib.sha256(), 0)
        if self._write_digest is not None and self._write_digest[0] == component and self._write_digest[2] == offset:
            self._write_digest[1].update(written)
            self._write_digest = (component, self._write_digest[1], offset + len(written))
        else:
            self._write_digest = None  # out-of-order write: finish_install reads the slot back instead
        if cut is not None:
            raise PowerCut(f"power cut at byte {offset + cut} while writing {component}")

    def finish_install(self, component: str, expected_sha256: str) -> SlotImage:
        """Check the written image and mark it to be tried on the next boot."""
        self.faults.check_phase("install")
        state = self._component(component)
        slot = _other(state.active)
        path = self.slot_path(component, slot)
        tracked = self._write_digest
        if tracked is not None and tracked[0] == component and tracked[2] == path.stat().st_size:
            digest = tracked[1].hexdigest()
        else:
            digest = sha256_file(path)[1]
        self._write_digest = None
        if digest != expected_sha256:
            raise DeviceError(
                "hash-mismatch", f"the {component} image in slot {slot} does not match its SHA-256", "transfer it again"
            )
        header = read_image_header(path)
        problem = self._header_problem(component, header)
        if problem:
            raise DeviceError(*problem)
        assert header is not None
        image = SlotImage(header.version, header.security_version, digest, path.stat().st_size)
        state.slots[slot] = image
        state.pending, state.boot_attempts, state.upload_sha256 = slot, 0, None
        self.save()
        return image

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

    # -- booting ------------------------------------------------------------------

    def _verified(self, component: str, slot: str) -> bool:
        image = self.components[component].slots.get(slot)
        path = self.slot_path(component, slot)
        if image is None or not path.exists() or path.stat().st_size != image.size_bytes:
            return False
        if sha256_file(path)[1] != image.sha256:
            return False
        header = read_image_header(path)
        # The floor applies to images still to be accepted; a committed image is already trusted.
        return header is not None and header.model == self.identity["model"] and header.component == component

    def power_on(self) -> BootRecord:
        """What the bootloader does after reset: pick, verify and start an image per component."""
        self.faults.check_phase("reboot")
        self.boot_count += 1
        record = BootRecord("ok")
        for name, state in self.components.items():
            if state.pending is not None:
                if state.boot_attempts >= MAX_BOOT_ATTEMPTS:
                    record = BootRecord(
                        "fallback",
                        f"{name}: slot {state.pending} failed {state.boot_attempts} boots; back to the committed image",
                    )
                    state.pending = None
                elif not self._verified(name, state.pending):
                    record = BootRecord("fallback", f"{name}: slot {state.pending} failed verification")
                    state.pending = None
                else:
                    state.active = state.pending
                    state.boot_attempts += 1
                    continue
            state.active = state.committed
            if not self._verified(name, state.committed):
                other = _other(state.committed)
                if self._verified(name, other):
                    state.active = state.committed = other
                    record = BootRecord("fallback", f"{name}: committed slot corrupt; booted slot {other}")
                else:
                    record = BootRecord("bricked", f"{name}: no bootable image")
        self.last_boot = record
        self._settle_connectors()
        self.save()
        return record

    def _settle_connectors(self) -> None:
        bricked = self.last_boot.result == "bricked"
        # "never-available": a freshly installed image that boots but never brings the connectors up.
        unhealthy = self.faults.never_available and any(s.pending is not None for s in self.components.values())
        for connector in self.connectors:
            if bricked:
                connector["status"] = "Faulted"
            elif unhealthy:
                connector["status"] = "Unavailable"
            elif any(t["connector"] == connector["id"] and t["stop_wh"] is None for t in self.transactions):
                connector["status"] = "Charging"
            else:
                connector["status"] = "Available"

    def observed_connectors(self) -> list[dict[str, Any]]:
        """Connector statuses as a health check reads them, one observation per call.

        Under "flap-health", a freshly installed image reports its connectors
        alternately Available and Unavailable: stable for no window at all.
        """
        pending_running = any(s.pending is not None and s.active == s.pending for s in self.components.values())
        if self.faults.flap_health and pending_running:
            self._flap_observations += 1
            status = "Unavailable" if self._flap_observations % 2 else "Available"
            return [{**c, "status": status} for c in self.connectors]
        return [dict(c) for c in self.connectors]

    # -- commit / roll back -------------------------------------------------------

    def mark_good(self, component: str) -> None:
        self.faults.check_phase("commit")
        state = self._component(component)
        if state.pending is None or state.active != state.pending:
            raise DeviceError("nothing-to-commit", f"{component} is not running a pending image")
        state.committed, state.pending, state.boot_attempts = state.active, None, 0
        image = state.running()
        assert image is not None
        self.security_version_floor = max(self.security_version_floor, image.security_version)
        self.save()

    def mark_bad(self, component: str) -> None:
        state = self._component(component)
        state.pending, state.boot_attempts = None, 0
        self.save()

    def mark_committed_bad(self, name: str) -> None:
        """The committed image is declared bad: the bootloader will not start it again.

        What RAUC's ``mark-bad booted`` does to a good running slot. If the
        other slot holds nothing verified, the next boot finds no image.
        """
        state = self._component(name)
        bad = state.committed
        state.slots[bad] = None
        state.committed, state.pending, state.boot_attempts = _other(bad), None, 0
        self.save()

    # -- charging sessions ----------------------------------------------------------

    @property
    def transaction_active(self) -> bool:
        return any(t["stop_wh"] is None for t in self.transactions)

    def start_transaction(self, connector: int) -> str:
        tx_id = f"tx-{len(self.transactions) + 1}"
        self.transactions.append({"id": tx_id, "connector": connector, "start_wh": self.meter_wh, "stop_wh": None})
        self._settle_connectors()
        self.save()
        return tx_id

    def deliver_energy(self, wh: int) -> None:
        if wh < 0:
            raise DeviceError("meter", "a meter register never goes backwards")
        self.meter_wh += wh
        self.save()

    def stop_transaction(self, tx_id: str) -> None:
        for transaction in self.transactions:
            if transaction["id"] == tx_id and transaction["stop_wh"] is None:
                transaction["stop_wh"] = self.meter_wh
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
