"""What a simulated charger's bootloader does after reset: pick, verify and start an image per component.

A pending image gets ``MAX_BOOT_ATTEMPTS`` tries and must pass verification
each time; after that, or when it fails, the bootloader falls back to the
last committed image. A committed image that no longer verifies is replaced
by the other slot if that one does; with neither, the charger is bricked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from fieldkit.simulator.flash import ComponentState, other_slot

MAX_BOOT_ATTEMPTS: Final = 3


@dataclass
class BootRecord:
    result: Literal["ok", "fallback", "bricked"]
    detail: str = ""


def boot(
    components: dict[str, ComponentState],
    verified: Callable[[str, str], bool],
    max_boot_attempts: int = MAX_BOOT_ATTEMPTS,
) -> BootRecord:
    """Choose and start every component's image; ``verified(component, slot)`` is the verify-before-boot check.

    ``max_boot_attempts``: how many boots an image on trial gets (MCUboot: one; its next reset goes back).
    """
    record = BootRecord("ok")
    for name, state in components.items():
        if state.pending is not None:
            if state.boot_attempts >= max_boot_attempts:
                record = BootRecord(
                    "fallback",
                    f"{name}: slot {state.pending} failed {state.boot_attempts} boots; back to the committed image",
                )
                state.pending = None
            elif not verified(name, state.pending):
                record = BootRecord("fallback", f"{name}: slot {state.pending} failed verification")
                state.pending = None
            else:
                state.active = state.pending
                state.boot_attempts += 1
                continue
        state.active = state.committed
        if not verified(name, state.committed):
            other = other_slot(state.committed)
            if verified(name, other):
                state.active = state.committed = other
                record = BootRecord("fallback", f"{name}: committed slot corrupt; booted slot {other}")
            else:
                record = BootRecord("bricked", f"{name}: no bootable image")
    return record
