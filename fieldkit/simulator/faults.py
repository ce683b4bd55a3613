"""Fault injection for simulated chargers: what real hardware and links do to an update.

Specs, as given to `--fault` (repeatable):

    power-cut:byte=N        the charger loses power after N bytes of an image are written
    power-cut:phase=P       ... when phase P starts (install, reboot, commit)
    corrupt:byte=N          the byte at image offset N is flipped on its way to flash
    drop:byte=N             byte N on a serial line is lost (the board never sees it)
    noise:byte=N            a burst of line noise arrives before byte N of a serial line
    hang:phase=P            the charger stops answering when phase P starts
    hang:byte=N             the link stalls once N bytes of an image have been received
    link-drop:byte=N        the link drops after N bytes of an image have been received
    rate:BYTES_PER_S        the link carries at most that many bytes per second
    fail-install:component=C  the charger's updater refuses to install component C
    never-available         a newly installed image boots but never brings connectors to Available
    flap-health             connectors alternate Available/Unavailable after an update
    unknown:fact=F          the charger cannot report F (transaction, security_version_floor): it says null

The device model applies power cuts, corruption, phases and health; the
protocol front-ends apply link drops, rate limits and hangs, since those
belong to the link and not to the flash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from fieldkit.errors import UsageError

PHASES: Final = ("install", "reboot", "commit")
UNKNOWABLE: Final = ("transaction", "security_version_floor")  # facts a charger may be unable to report
# A burst of line noise: garbage, with SMP markers and newlines among it.
NOISE: Final = b"\x00\xff\x06\t~\x92\n\x04\x14\xa5"


class PowerCut(Exception):
    """The simulated charger lost power. A front-end ends its process as if unplugged."""


class Hang(Exception):
    """The simulated charger stopped answering. A front-end stops responding."""


@dataclass
class FaultPlan:
    power_cut_byte: int | None = None
    power_cut_phases: set[str] = field(default_factory=set)
    corrupt_bytes: set[int] = field(default_factory=set)
    dropped_bytes: set[int] = field(default_factory=set)
    noise_before: set[int] = field(default_factory=set)
    hang_phases: set[str] = field(default_factory=set)
    hang_byte: int | None = None
    link_drop_byte: int | None = None
    rate_bytes_per_s: int | None = None
    never_available: bool = False
    flap_health: bool = False
    failing_installs: set[str] = field(default_factory=set)
    unknown_facts: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...]) -> FaultPlan:
        plan = cls()
        for spec in specs:
            plan._add(spec.strip())
        return plan

    def _add(self, spec: str) -> None:
        kind, _, argument = spec.partition(":")
        key, _, value = argument.partition("=")
        if kind == "never-available" and not argument:
            self.never_available = True
        elif kind == "flap-health" and not argument:
            self.flap_health = True
        elif kind == "rate" and argument.isdigit() and int(argument) > 0:
            self.rate_bytes_per_s = int(argument)
        elif kind in ("drop", "noise") and key == "byte" and value.isdigit():
            (self.dropped_bytes if kind == "drop" else self.noise_before).add(int(value))
        elif kind in ("power-cut", "corrupt", "link-drop", "hang") and key == "byte" and value.isdigit():
            if kind == "hang":
                self.hang_byte = int(value)
            elif kind == "power-cut":
                self.power_cut_byte = int(value)
            elif kind == "corrupt":
                self.corrupt_bytes.add(int(value))
            else:
                self.link_drop_byte = int(value)
        elif kind == "unknown" and key == "fact" and value in UNKNOWABLE:
            self.unknown_facts.add(value)
        elif kind == "fail-install" and key == "component" and value:
            self.failing_installs.add(value)
        elif kind in ("power-cut", "hang") and key == "phase" and value in PHASES:
            (self.power_cut_phases if kind == "power-cut" else self.hang_phases).add(value)
        else:
            raise UsageError(
                f"--fault {spec!r} is not a fault spec",
                "use power-cut:byte=N, power-cut:phase=install|reboot|commit, corrupt:byte=N, drop:byte=N, "
                "noise:byte=N, hang:phase=P, "
                "hang:byte=N, link-drop:byte=N, rate:BYTES_PER_S, fail-install:component=C, never-available, "
                "flap-health or unknown:fact=transaction|security_version_floor",
            )

    def power_cut_within(self, offset: int, length: int) -> int | None:
        """How many of these bytes land before the power cut, or None if it is not in this write."""
        if self.power_cut_byte is not None and offset <= self.power_cut_byte < offset + length:
            return self.power_cut_byte - offset
        return None

    def corrupt(self, offset: int, data: bytes) -> bytes:
        hits = [b - offset for b in self.corrupt_bytes if offset <= b < offset + len(data)]
        if not hits:
            return data
        mutable = bytearray(data)
        for index in hits:
            mutable[index] ^= 0xFF
        return bytes(mutable)

    def line_noise(self, offset: int, data: bytes) -> bytes:
        """``data`` (line bytes from ``offset`` on) as a noisy line delivers it: bytes lost, noise added."""
        span = range(offset, offset + len(data))
        if not any(b in span for b in self.dropped_bytes | self.noise_before):
            return data
        out = bytearray()
        for index, byte in enumerate(data):
            if offset + index in self.noise_before:
                out += NOISE
            if offset + index not in self.dropped_bytes:
                out.append(byte)
        return bytes(out)

    def check_phase(self, phase: str) -> None:
        if phase in self.power_cut_phases:
            raise PowerCut(f"power cut at the start of {phase}")
        if phase in self.hang_phases:
            raise Hang(f"charger hangs at the start of {phase}")
