"""A profile's ``privileged`` prefix: in front of each root-only updater program, and nowhere else.

Through dropbear a charger often logs in as a service user; its sudoers then
names exactly the programs it may run as root (swupdate, fw_printenv,
fw_setenv, mender). These pin that fieldkit puts the prefix right before
those programs, so such a rule matches, and never in front of a shell.
The rig runs the same through real sudo (test_real_linux_chargers.py).
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fieldkit.drivers import mender, swupdate
from fieldkit.drivers.profiles import Profile, SwupdateTable

ENV = "rootpart=A\nupgrade_available=1\nbootcount=0\nustate=1\n"


def test_swupdate_install_and_environment_writes_run_their_program_behind_the_prefix() -> None:
    status = swupdate.SwupdateStatus.parse(SwupdateTable(), ENV, "sudo -n ")
    assert status.install_command("/var/tmp/x.img").startswith("sudo -n swupdate -B uboot ")
    (write,) = swupdate.abandon_plan(status, trial_running_by_job=False).commands
    assert 'sudo -n fw_setenv -s "$f"' in write
    assert not write.startswith("sudo"), "the shell around fw_setenv stays the login user's"
    assert swupdate.env_command("sudo -n ") == "sudo -n fw_printenv"


def test_without_a_prefix_the_commands_are_the_plain_ones() -> None:
    status = swupdate.SwupdateStatus.parse(SwupdateTable(), ENV)
    assert status.install_command("/var/tmp/x.img").startswith("swupdate -B uboot ")
    (write,) = swupdate.abandon_plan(status, trial_running_by_job=False).commands
    assert "&& fw_setenv -s" in write
    assert swupdate.env_command() == "fw_printenv"


def test_mender_verbs_and_its_environment_read_run_behind_the_prefix() -> None:
    env = "mender_boot_part=3\nupgrade_available=1\nbootcount=0\n"
    status = mender.MenderStatus.parse("sudo -n mender", f"{env}{mender.CONFIG_MARKER}\n")
    assert status.install_command("/var/tmp/x.mender") == "sudo -n mender install /var/tmp/x.mender"
    assert mender.abandon_plan(status, trial_running_by_job=False).commands == ("sudo -n mender rollback",)
    assert mender.status_command("sudo -n ").startswith("sudo -n fw_printenv; ")


def test_a_profile_prefix_is_words_only_never_shell() -> None:
    base = {"name": "p", "match": "true"}
    assert Profile.model_validate({**base, "privileged": "sudo -n"}).root_prefix == "sudo -n "
    assert Profile.model_validate(base).root_prefix == ""
    for hostile in ("sudo -n; rm -rf /", "$(id)", "sudo\n-n", "doas `x`"):
        with pytest.raises(ValidationError):
            Profile.model_validate({**base, "privileged": hostile})
