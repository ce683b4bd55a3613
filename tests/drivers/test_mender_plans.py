"""Mender's decisions as plain functions over U-Boot's environment: what fieldkit sends, and when.

The real client is exercised in test_real_linux_chargers.py; these pin the
rules for states the rig reaches only by chance (a trial on its last
attempt, a configuration that names no partitions).
"""

from __future__ import annotations

import pytest

from fieldkit.drivers.mender import STATUS_COMMAND, MenderStatus, abandon_plan, commit_plan
from fieldkit.errors import DeviceRefusedError

CONFIG = '{"RootfsPartA": "/dev/mmcblk0p2", "RootfsPartB": "/dev/mmcblk0p3"}'


def status(part: str, trial: bool, count: int, config: str = CONFIG, command: str = "mender") -> MenderStatus:
    env = f"bootlimit=1\nmender_boot_part={part}\nupgrade_available={int(trial)}\nbootcount={count}\n"
    return MenderStatus.parse(command, f"{env}@@fieldkit-mender-conf\n{config}\n\n")


def test_the_status_command_reads_the_environment_and_both_configuration_files() -> None:
    assert "fw_printenv" in STATUS_COMMAND
    assert "/etc/mender/mender.conf" in STATUS_COMMAND and "/var/lib/mender/mender.conf" in STATUS_COMMAND


def test_installed_but_not_booted_names_the_running_partition_and_the_pending_one() -> None:
    s = status("3", trial=True, count=0)
    assert (s.booted, s.pending, s.installed_not_booted, s.trial_running) == ("mmcblk0p2", "mmcblk0p3", True, False)


def test_the_data_store_configuration_overrides_the_system_one() -> None:
    override = '{"RootfsPartA": "/dev/sda5", "RootfsPartB": "/dev/sda6"}'
    s = status("6", trial=False, count=0, config=f"{CONFIG}\n{override}")
    assert s.booted == "sda6"


def test_without_partition_names_the_running_partition_is_described_not_guessed() -> None:
    s = status("3", trial=True, count=0, config="")
    assert s.booted == "not partition 3" and s.pending == "partition 3"


def test_an_environment_without_mender_boot_part_is_refused() -> None:
    with pytest.raises(DeviceRefusedError, match="mender_boot_part"):
        MenderStatus.parse("mender", "rootpart=A\nupgrade_available=0\n")


def test_commit_only_while_the_new_version_runs_on_trial() -> None:
    assert commit_plan(status("3", True, 1), "2.4.0", "2.4.0").commands == ("mender commit",)
    assert commit_plan(status("3", False, 0), "2.4.0", "2.4.0").commands == (), "already committed: nothing to send"
    with pytest.raises(DeviceRefusedError, match="not committing"):
        commit_plan(status("2", False, 0), "2.3.0", "2.4.0")


def test_mender_4_uses_its_own_client() -> None:
    plan = commit_plan(status("3", True, 1, command="mender-update"), "2.4.0", "2.4.0")
    assert plan.commands == ("mender-update commit",)


@pytest.mark.parametrize(
    ("part", "trial", "count", "by_job", "commands", "reboot"),
    [
        ("3", True, 0, False, ("mender rollback",), False),  # installed, not booted: no reboot needed
        ("3", True, 1, False, ("mender rollback",), True),  # the new image runs on trial
        ("3", True, 1, True, ("mender rollback",), True),
        ("2", False, 0, False, (), False),  # nothing pending; the bootloader may already have gone back
    ],
)
def test_rollback_only_what_is_pending(
    part: str, trial: bool, count: int, by_job: bool, commands: tuple[str, ...], reboot: bool
) -> None:
    plan = abandon_plan(status(part, trial, count), by_job)
    assert (plan.commands, plan.reboot) == (commands, reboot)


def test_a_committed_update_is_not_pretended_away() -> None:
    with pytest.raises(DeviceRefusedError, match="cannot go back"):
        abandon_plan(status("3", False, 0), trial_running_by_job=True)
