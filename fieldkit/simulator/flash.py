"""A simulated charger's flash: two slots (A/B) per component, written at offsets, checked before they boot.

Each component's images are files (``slots/<component>/A`` and ``B``), like
flash partitions. An image is written into the inactive slot at offsets, as
an update protocol delivers it; what is being written is remembered (as an
SMP upload session is) so a write cut short can continue where it stopped.
Finishing checks the SHA-256 announced for it and the header's model,
component and security version. The fault plan corrupts bytes on their way
to flash and cuts power in the middle of a write, leaving a torn image that
no check accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fieldkit.errors import FieldkitError
from fieldkit.fsutil import sha256_file
from fieldkit.simulator.faults import FaultPlan, PowerCut
from fieldkit.simulator.image import ImageHeader, read_image_header

Slot = Literal["A", "B"]


class DeviceError(FieldkitError):
    """The simulated charger refused an operation, as the real one would."""

    exit_code = 9

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


def other_slot(slot: str) -> Slot:
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
    # The updater that owns this component on this charger (rauc, swupdate, mender, script; mcumgr-smp on an
    # MCU): part of the charger's software as its catalog model defines it, read by the protocol front-ends.
    install_method: str = "rauc"
    upload_sha256: str | None = None  # the image being written into the inactive slot, until it is installed

    def running(self) -> SlotImage | None:
        return self.slots.get(self.active)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ComponentState:
        return cls(
            committed=raw["committed"],
            active=raw["active"],
            pending=raw["pending"],
            boot_attempts=raw["boot_attempts"],
            slots={s: SlotImage(**info) if info else None for s, info in raw["slots"].items()},
            install_method=raw.get("install_method", "rauc"),
            upload_sha256=raw.get("upload_sha256"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "committed": self.committed,
            "active": self.active,
            "pending": self.pending,
            "boot_attempts": self.boot_attempts,
            "install_method": self.install_method,
            "upload_sha256": self.upload_sha256,
            "slots": {s: (vars(i) if i else None) for s, i in self.slots.items()},
        }


# Why an image may not be accepted: (code, message), or None when it may.
HeaderPolicy = Callable[[str, ImageHeader | None], tuple[str, str] | None]


class Flash:
    """The slots of every component, and the one image being written."""

    def __init__(
        self, root: Path, components: dict[str, ComponentState], faults: FaultPlan, save: Callable[[], None]
    ) -> None:
        self.root = root  # slots/<component>/<slot> below it
        self.components = components
        self.faults = faults
        self._save = save  # persists the slot bookkeeping (the charger's state file)
        self._write_digest: tuple[str, Any, int] | None = None  # (component, running SHA-256, bytes hashed)

    def slot_path(self, component: str, slot: str) -> Path:
        return self.root / "slots" / component / slot

    def component(self, name: str) -> ComponentState:
        try:
            return self.components[name]
        except KeyError as exc:
            raise DeviceError(
                "no-such-component",
                f"this charger has no component {name!r}",
                f"components: {', '.join(self.components)}",
            ) from exc

    def inactive_slot(self, component: str) -> Slot:
        return other_slot(self.component(component).active)

    def begin_install(self, component: str, sha256: str | None = None) -> Path:
        """Forget whatever is in the inactive slot and return its path for writing.

        ``sha256``: the image about to be written, remembered (as an SMP upload session is) so that a
        write cut short can continue where it stopped (``upload_offset``).
        """
        state = self.component(component)
        if state.pending is not None:
            raise DeviceError(
                "install-pending",
                f"{component} already has an image waiting to boot",
                "reboot and mark it good or bad first",
            )
        slot = other_slot(state.active)
        state.slots[slot] = None
        state.upload_sha256 = sha256
        self._save()  # the slot is invalid before the first byte is written
        self.slot_path(component, slot).write_bytes(b"")
        return self.slot_path(component, slot)

    def upload_offset(self, component: str, sha256: str) -> int:
        """How much of the image ``sha256`` the inactive slot already holds (0: start again)."""
        state = self.component(component)
        if state.pending is not None or state.upload_sha256 != sha256:
            return 0
        path = self.slot_path(component, other_slot(state.active))
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

    def finish_install(self, component: str, expected_sha256: str, policy: HeaderPolicy) -> SlotImage:
        """Check the written image (hash, then ``policy`` on its header) and mark it to try on the next boot."""
        state = self.component(component)
        slot = other_slot(state.active)
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
        problem = policy(component, header)
        if problem:
            raise DeviceError(*problem)
        assert header is not None
        image = SlotImage(header.version, header.security_version, digest, path.stat().st_size)
        state.slots[slot] = image
        state.pending, state.boot_attempts, state.upload_sha256 = slot, 0, None
        self._save()
        return image

    def verified(self, component: str, slot: str, model: str) -> bool:
        """Would a verify-before-boot bootloader start this slot: whole, as hashed, and made for this model?"""
        image = self.components[component].slots.get(slot)
        path = self.slot_path(component, slot)
        if image is None or not path.exists() or path.stat().st_size != image.size_bytes:
            return False
        if sha256_file(path)[1] != image.sha256:
            return False
        header = read_image_header(path)
        # The floor applies to images still to be accepted; a committed image is already trusted.
        return header is not None and header.model == model and header.component == component
