"""Mender in standalone mode, as its dual-rootfs U-Boot integration runs it.

Mender 3 (``mender install|commit|rollback``, Debian 12's mender-client)
and Mender 4 (``mender-update install|commit|rollback``) share one
bootloader contract (meta-mender's U-Boot integration), kept in U-Boot's
environment:

- ``mender_boot_part``: the partition number U-Boot boots; ``install``
  writes the new image to the other partition and points this at it;
- ``upgrade_available=1``: that partition is on trial; U-Boot counts its
  boots in ``bootcount`` (``install`` sets it to 0) and past ``bootlimit``
  its ``altbootcmd`` switches back and clears the trial.

So, from the environment alone: installed but not yet booted is
``upgrade_available=1, bootcount=0``; on trial is ``upgrade_available=1,
bootcount>=1``; otherwise the booted partition is committed.

Mender decides the partitions itself, and neither of its verbs marks
anything bad: ``rollback`` points the bootloader at the partition that ran
before (before the first boot: the one running now), ``commit`` clears the
trial. fieldkit only decides *when* to send them: commit while the new
version runs, roll back only while something is pending, and reboot after a
rollback only when the new image is the one running. A committed update has
no "before" in Mender: fieldkit says so instead of pretending.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from fieldkit.drivers.rauc import Plan
from fieldkit.errors import DeviceRefusedError

CONFIG_MARKER: Final = "@@fieldkit-mender-conf"
# One round trip: the environment, then Mender's configuration (the system file, then the data store's).
STATUS_COMMAND: Final = (
    f"fw_printenv; echo {CONFIG_MARKER}; "
    'for f in /etc/mender/mender.conf /var/lib/mender/mender.conf; do [ -r "$f" ] && cat "$f"; echo; done'
)


def status_command(root_prefix: str = "") -> str:
    """STATUS_COMMAND, with ``root_prefix`` (the profile's ``privileged``) in front of fw_printenv."""
    return root_prefix + STATUS_COMMAND


@dataclass(frozen=True)
class MenderStatus:
    # "mender" (Mender 3) or "mender-update" (Mender 4), the profile's [mender] command, behind the
    # profile's `privileged` prefix where there is one
    command: str
    boot_part: str  # mender_boot_part: the partition U-Boot boots next
    trial: bool  # upgrade_available=1
    boot_count: int
    partitions: tuple[str, ...]  # RootfsPartA and RootfsPartB from Mender's configuration, where it says

    @classmethod
    def parse(cls, command: str, text: str) -> MenderStatus:
        env_text, _, config_text = text.partition(CONFIG_MARKER)
        env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
        part = env.get("mender_boot_part", "")
        if not part.isdigit():
            raise DeviceRefusedError(
                f"the bootloader environment has no valid mender_boot_part ({part or 'none'})",
                "this is not Mender's dual-rootfs U-Boot layout; add a charger profile for it",
            )
        count = env.get("bootcount", "0")
        return cls(
            command,
            part,
            env.get("upgrade_available") == "1",
            int(count) if count.isdigit() else 0,
            _partitions(config_text),
        )

    def device(self, number: str) -> str:
        """The partition's device name where Mender's configuration names it (``mmcblk0p2``), else its number."""
        for device in self.partitions:
            if _partition_number(device) == number:
                return device.rsplit("/", 1)[-1]
        return f"partition {number}"

    def other(self, number: str) -> str | None:
        numbers = [_partition_number(d) for d in self.partitions]
        rest = [n for n in numbers if n and n != number]
        return rest[0] if len(numbers) == 2 and len(rest) == 1 else None

    @property
    def installed_not_booted(self) -> bool:
        return self.trial and self.boot_count == 0

    @property
    def trial_running(self) -> bool:
        return self.trial and self.boot_count > 0

    @property
    def booted(self) -> str:
        """The running partition's name: the boot partition, except while an install waits for its first boot."""
        if self.installed_not_booted:
            other = self.other(self.boot_part)
            return self.device(other) if other is not None else f"not {self.device(self.boot_part)}"
        return self.device(self.boot_part)

    @property
    def pending(self) -> str | None:
        return self.device(self.boot_part) if self.installed_not_booted else None

    def verb(self, name: str) -> str:
        return f"{self.command} {name}"

    def install_command(self, image: str) -> str:
        return f"{self.verb('install')} {image}"


def _partition_number(device: str) -> str:
    """The trailing digits of a device name, as Mender reads them (``/dev/mmcblk0p2`` -> ``2``)."""
    return device[len(device.rstrip("0123456789")) :]


def _partitions(config_text: str) -> tuple[str, ...]:
    """RootfsPartA/B from the configuration files (the data store's file overrides the system one)."""
    found: dict[str, str] = {}
    decoder = json.JSONDecoder()
    text = config_text.strip()
    while text:
        try:
            document, end = decoder.raw_decode(text)
        except ValueError:
            break
        if isinstance(document, dict):
            for key in ("RootfsPartA", "RootfsPartB"):
                value = document.get(key)
                if isinstance(value, str) and value:
                    found[key] = value
        text = text[end:].strip()
    return tuple(found[k] for k in ("RootfsPartA", "RootfsPartB") if k in found)


def commit_plan(status: MenderStatus, running_version: str | None, expected: str) -> Plan:
    if running_version != expected:
        raise DeviceRefusedError(
            f"not committing: {status.booted} runs {running_version or 'an unknown version'}, not {expected}",
            "the new image is not running; roll back or install again",
        )
    if not status.trial:
        return Plan((), False, f"{status.booted} ({expected}) is already committed")
    return Plan((status.verb("commit"),), False, f"{status.booted} ({expected}) committed")


def abandon_plan(status: MenderStatus, trial_running_by_job: bool) -> Plan:
    """Roll back only what is pending; reboot only when the abandoned image is the one running."""
    if status.installed_not_booted:
        return Plan(
            (status.verb("rollback"),),
            False,
            f"install in {status.device(status.boot_part)} abandoned before it booted; {status.booted} boots again",
        )
    if status.trial_running:
        return Plan((status.verb("rollback"),), True, f"{status.booted} abandoned; booting the previous partition")
    if trial_running_by_job:
        raise DeviceRefusedError(
            f"{status.booted} runs the new image and Mender already committed it: Mender cannot go back to the "
            "image before a committed update",
            "install the previous release's bundle to go back",
        )
    return Plan((), False, f"nothing pending: {status.booted} runs and is committed")
