"""RAUC as it really behaves: its status read, and what fieldkit may ask of it without bricking a charger.

RAUC's own words (``rauc status``) decide every step; nothing is inferred
from what fieldkit expected. The rules:

- ``mark-bad booted`` marks the slot that runs *now*. Before the new slot
  has booted, the running slot is the good one, so abandoning an install
  that has not booted is ``mark-active booted``: the running slot becomes
  primary again and nothing is marked bad.
- Once the new slot runs and is unhealthy, it is marked bad (and the
  charger rebooted) only while the other slot is still good; otherwise the
  charger stays on what it runs and the technician is told.
- ``mark-good booted`` commits only when the booted slot runs the new
  version.
- With nothing pending (the booted slot is primary and no job says it is a
  trial), there is nothing to roll back: fieldkit refuses and changes nothing.

These are decided here as plain functions over a parsed status, so the
rules are tested without a charger; the driver runs the commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fieldkit.errors import DeviceRefusedError
from fieldkit.safejson import parse_bounded

STATUS_COMMAND: Final = "rauc status --detailed --output-format=json"
MARK_GOOD: Final = "rauc status mark-good booted"
MARK_BAD: Final = "rauc status mark-bad booted"
RESTORE_BOOTED: Final = "rauc status mark-active booted"
MAX_STATUS_BYTES: Final = 1024 * 1024  # the remote shell caps any answer at 4 MiB; a status is a few KiB


@dataclass(frozen=True)
class RaucSlot:
    name: str  # rootfs.0
    slot_class: str  # rootfs
    bootname: str | None  # A
    state: str  # booted, active, inactive
    boot_status: str | None  # good, bad (from the bootloader), None if RAUC could not tell
    bundle_version: str | None  # what RAUC last installed there, if it did
    image_sha256: str | None

    @property
    def booted(self) -> bool:
        return self.state == "booted"

    @property
    def good(self) -> bool:
        return self.boot_status == "good"


@dataclass(frozen=True)
class RaucStatus:
    compatible: str
    booted: str | None  # bootname of the booted slot
    primary: str | None  # name of the slot the bootloader will try first
    slots: tuple[RaucSlot, ...]

    @classmethod
    def parse(cls, text: str) -> RaucStatus:
        try:
            raw = parse_bounded(text.encode("utf-8", "surrogateescape"), MAX_STATUS_BYTES, 16)
            slots = []
            for entry in raw["slots"]:
                for name, info in entry.items():
                    status = info.get("slot_status") or {}
                    bundle = status.get("bundle") or {}
                    checksum = status.get("checksum") or {}
                    slots.append(
                        RaucSlot(
                            name=name,
                            slot_class=str(info.get("class") or name.split(".")[0]),
                            bootname=info.get("bootname"),
                            state=str(info.get("state") or "inactive"),
                            boot_status=info.get("boot_status"),
                            bundle_version=bundle.get("version"),
                            image_sha256=checksum.get("sha256"),
                        )
                    )
            return cls(str(raw.get("compatible") or ""), raw.get("booted"), raw.get("boot_primary"), tuple(slots))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DeviceRefusedError(
                f"`rauc status` answered in a shape fieldkit does not know: {text[:200]!r}",
                "fieldkit reads RAUC 1.5 or newer (--output-format=json)",
            ) from exc

    def bootable(self, slot_class: str) -> list[RaucSlot]:
        return [s for s in self.slots if s.slot_class == slot_class and s.bootname]

    def booted_slot(self, slot_class: str) -> RaucSlot | None:
        return next((s for s in self.bootable(slot_class) if s.booted or s.bootname == self.booted), None)

    def primary_slot(self, slot_class: str) -> RaucSlot | None:
        return next((s for s in self.bootable(slot_class) if s.name == self.primary), None)

    def other_slot(self, slot_class: str) -> RaucSlot | None:
        booted = self.booted_slot(slot_class)
        return next((s for s in self.bootable(slot_class) if booted is None or s.name != booted.name), None)

    def pending(self, slot_class: str) -> RaucSlot | None:
        """An installed slot waiting for its first boot: primary, but not the one running."""
        booted, primary = self.booted_slot(slot_class), self.primary_slot(slot_class)
        if primary is not None and booted is not None and primary.name != booted.name:
            return primary
        return None


@dataclass(frozen=True)
class Plan:
    """What to send RAUC, and whether the charger must reboot afterwards."""

    commands: tuple[str, ...]
    reboot: bool
    note: str


def commit_plan(status: RaucStatus, slot_class: str, running_version: str | None, expected: str) -> Plan:
    """Commit only the new image, and only while it is the one running."""
    booted = status.booted_slot(slot_class)
    if booted is None:
        raise DeviceRefusedError("RAUC does not say which slot is booted", "check the charger's boot configuration")
    if running_version != expected:
        raise DeviceRefusedError(
            f"not committing: slot {booted.bootname} runs {running_version or 'an unknown version'}, not {expected}",
            "the new image is not running; roll back or install again",
        )
    return Plan((MARK_GOOD,), False, f"slot {booted.bootname} ({expected}) marked good")


def abandon_plan(status: RaucStatus, slot_class: str, running_version: str | None, trial_running: bool) -> Plan:
    """Go back to the last known good image without ever marking a good slot bad.

    ``trial_running``: the booted slot runs the new, uncommitted image. RAUC
    cannot tell; the job's journal (the version it ran before) or the
    charger's own helpers can. Without either it is False, so the worst a
    wrong answer can do is leave a trial image running, never mark the good
    slot bad.
    """
    booted = status.booted_slot(slot_class)
    if booted is None:
        raise DeviceRefusedError("RAUC does not say which slot is booted", "check the charger's boot configuration")
    pending = status.pending(slot_class)
    if not trial_running:
        if pending is None:
            return Plan((), False, f"nothing pending: slot {booted.bootname} runs and is primary")
        return Plan(
            (RESTORE_BOOTED,),
            False,
            f"install in slot {pending.bootname} abandoned before it booted; slot {booted.bootname} is primary again",
        )
    other = status.other_slot(slot_class)
    if other is None or not other.good:
        raise DeviceRefusedError(
            f"slot {booted.bootname} runs the new image and slot "
            f"{other.bootname if other else '?'} is not marked good: no good image to go back to",
            "the charger stays on what it runs; reinstall the previous bundle, or recover it through its bootloader",
        )
    return Plan(
        (MARK_BAD,), True, f"slot {booted.bootname} ({running_version}) marked bad; booting slot {other.bootname}"
    )
