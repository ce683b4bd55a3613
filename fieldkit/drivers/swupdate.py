"""SWUpdate as A/B setups run it: U-Boot's environment says which copy boots and whether it is on trial.

SWUpdate itself keeps no slot state. A dual-copy setup (meta-swupdate's
convention, which the generic profile assumes and a vendor profile can
rename) keeps it in the bootloader environment:

- ``rootpart``: the copy U-Boot boots (the sw-description's ``bootenv``
  section sets it to the copy just written);
- ``upgrade_available=1``: that copy is on trial; U-Boot counts its boots in
  ``bootcount`` and past ``bootlimit`` its ``altbootcmd`` switches back;
- ``ustate``: SWUpdate's update state (1 installed, 3 failed, 0 none).

So, from the environment alone: installed but not yet booted is
``upgrade_available=1, bootcount=0`` (the running copy is the other one);
on trial is ``upgrade_available=1, bootcount>=1``. The rules match RAUC's
(rauc.py): abandoning an install that has not booted points the bootloader
back at the running copy and reboots nothing; a running trial is left for
the previous copy only when the job knows what ran before; commit only when
the new version runs. Several variables change in one environment write
(``fw_setenv -s``), so a power cut cannot leave half of them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Final

from fieldkit.drivers.profiles import SwupdateTable
from fieldkit.drivers.rauc import Plan
from fieldkit.errors import DeviceRefusedError

ENV_COMMAND: Final = "fw_printenv"


def env_command(root_prefix: str = "") -> str:
    """Read the bootloader environment; ``root_prefix`` (the profile's ``privileged``) when that needs root."""
    return root_prefix + ENV_COMMAND


@dataclass(frozen=True)
class SwupdateStatus:
    layout: SwupdateTable  # where the setup keeps its state: the profile's [swupdate] table
    boot_slot: str  # what the bootloader will boot next
    trial: bool  # upgrade_available=1
    boot_count: int
    root_prefix: str = ""  # in front of swupdate and fw_setenv: the profile's `privileged`, or nothing

    @classmethod
    def parse(cls, layout: SwupdateTable, text: str, root_prefix: str = "") -> SwupdateStatus:
        env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        slot = env.get(layout.slot_var)
        if slot not in layout.slots:
            raise DeviceRefusedError(
                f"the bootloader environment has no valid {layout.slot_var} ({slot!r})",
                "this is not the dual-copy SWUpdate layout fieldkit's profile describes; add a profile for it",
            )
        count = env.get(layout.count_var, "0")
        boot_count = int(count) if count.isdigit() else 0
        return cls(layout, slot, env.get(layout.trial_var) == "1", boot_count, root_prefix)

    def other(self, slot: str) -> str:
        first, second = self.layout.slots
        return second if slot == first else first

    @property
    def installed_not_booted(self) -> bool:
        return self.trial and self.boot_count == 0

    @property
    def booted(self) -> str:
        """The copy running now: the boot slot, except while a fresh install waits for its first boot."""
        return self.other(self.boot_slot) if self.installed_not_booted else self.boot_slot

    @property
    def trial_running(self) -> bool:
        return self.trial and self.boot_count > 0

    @property
    def pending(self) -> str | None:
        return self.boot_slot if self.installed_not_booted else None

    def install_command(self, image: str) -> str:
        target = self.other(self.booted)
        select = self.layout.select.format(slot=target)
        key = shlex.quote(self.layout.key)
        return f"{self.root_prefix}swupdate -B uboot -k {key} -e {shlex.quote(select)} -i {image}"

    def _write_env(self, values: dict[str, str]) -> str:
        """One ``fw_setenv -s`` of all ``values``: libubootenv writes them in a single environment update.

        Script lines are ``name=value`` (libubootenv, as Debian 12 and meta-swupdate ship it), from a file
        on the charger because not every fw_setenv reads a script from stdin.
        """
        script = "".join(f"{name}={value}\\n" for name, value in values.items())
        write = f'{self.root_prefix}fw_setenv -s "$f"'
        return "f=$(mktemp) && printf '" + script + '\' > "$f" && ' + write + '; s=$?; rm -f "$f"; exit $s'


def commit_plan(status: SwupdateStatus, running_version: str | None, expected: str) -> Plan:
    layout = status.layout
    if running_version != expected:
        raise DeviceRefusedError(
            f"not committing: copy {status.booted} runs {running_version or 'an unknown version'}, not {expected}",
            "the new image is not running; roll back or install again",
        )
    if not status.trial:
        return Plan((), False, f"copy {status.booted} ({expected}) is already committed")
    write = status._write_env({layout.trial_var: "0", layout.count_var: "0", layout.state_var: "0"})
    return Plan((write,), False, f"copy {status.booted} ({expected}) committed")


def abandon_plan(status: SwupdateStatus, trial_running_by_job: bool) -> Plan:
    layout = status.layout
    booted = status.booted
    if status.installed_not_booted:
        write = status._write_env(
            {layout.slot_var: booted, layout.trial_var: "0", layout.count_var: "0", layout.state_var: "3"}
        )
        return Plan(
            (write,), False, f"install in copy {status.boot_slot} abandoned before it booted; copy {booted} boots again"
        )
    if status.trial_running or trial_running_by_job:
        previous = status.other(booted)
        write = status._write_env(
            {layout.slot_var: previous, layout.trial_var: "0", layout.count_var: "0", layout.state_var: "3"}
        )
        return Plan((write,), True, f"copy {booted} abandoned; booting copy {previous}")
    return Plan((), False, f"nothing pending: copy {booted} runs and is committed")
