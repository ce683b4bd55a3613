"""fieldkit against Linux chargers built from stock parts: real RAUC, SWUpdate or Mender, a real U-Boot environment.

The charger is tests/support/rig.py: RAUC 1.8's D-Bus service with
``bootloader=uboot``, SWUpdate 2022.12 with U-Boot's bootcount scheme, or
Mender 3.4's client in standalone mode with meta-mender's U-Boot logic;
the environment read and written by u-boot-tools' ``fw_printenv``/
``fw_setenv``, slots as files, and a bootloader that boots what that
environment says; OpenSSH sshd (root) or dropbear (a service user, default
window). Nothing fieldkit-specific runs on it: fieldkit finds it through the
generic profiles (or a vendor profile that extends one). After every
scenario the charger must boot a good image, and no slot that was good may
have been marked bad.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldkit.bundles.build import create_bundle, sign_bundle
from fieldkit.bundles.demo_keys import demo_private_key
from fieldkit.config import Limits
from fieldkit.demo import init_demo
from tests.support.menderartifact import build_mender_artifact, verify_key_pem
from tests.support.netfault import FaultyProxy
from tests.support.raucbundle import RaucSigner, build_rauc_bundle, make_signer
from tests.support.rig import COMPATIBLE, MENDER_DEVICE_TYPE, LinuxRig, Server, Updater, rig_image, rig_missing
from tests.support.swupdatebundle import build_swu

pytestmark = pytest.mark.skipif(rig_missing() is not None, reason=rig_missing() or "")
FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
FACTORY, NEW = "2.3.0", "2.4.0"
CONFIRM = ("--confirm-unknown", "transaction", "--confirm-unknown", "security_version_floor")
# A charger maker's profile on top of the generic one: its application's health, and its OCPP stack's
# transaction state (the rig writes it to /run/charger at boot, as a charger's OCPP stack would).
VENDOR_PROFILE = """
name = "voltiq-rig"
extends = "generic-{updater}"
priority = 20
health = "test ! -e /run/charger/failed"
{extra}
[[facts]]
name = "transaction"
file = "/run/charger/transaction"
"""
SWUPDATE_KEY = '[swupdate]\nkey = "/etc/swupdate/ca.pem"\n'
# Through dropbear the login user is a service user: the profile puts sudo in front of SWUpdate's and the boot
# environment's programs (the rig's sudoers grants exactly those), and its match reads the environment so too.
PRIVILEGED = 'privileged = "sudo -n"\nmatch = "command -v swupdate && sudo -n fw_printenv | grep -q \'^rootpart=\'"\n'
# The updater's own words for each refusal.
REFUSALS = {
    ("rauc", "wrong-compatible"): "Compatible mismatch",
    ("rauc", "untrusted-signer"): "signature",
    ("swupdate", "wrong-compatible"): "not compatible with hardware",
    ("swupdate", "untrusted-signer"): "Authentication of all signatures failed",
    ("mender", "wrong-compatible"): "not compatible with device",
    ("mender", "untrusted-signer"): "invalid signature",
}


@dataclass(frozen=True)
class Keys:
    demo: Path  # trust store and demo signing keys (fieldkit bundles)
    signer: RaucSigner  # the charger maker's RAUC signing certificate, trusted by the rig's keyring
    stranger: RaucSigner  # a signer the charger does not trust


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    base = tmp_path_factory.mktemp("rauc-keys")
    init_demo(base / "demo", 4096)
    return Keys(base / "demo", make_signer(base / "voltiq", "Voltiq"), make_signer(base / "stranger", "Stranger"))


@dataclass
class Site:
    rig: LinuxRig
    home: Path
    keys: Keys
    work: Path

    @property
    def updater(self) -> Updater:
        return self.rig.updater

    def env(self) -> dict[str, str]:
        return {**os.environ, "FIELDKIT_HOME": str(self.home), "FIELDKIT_PASSPHRASE_FILE": str(self.home / "pass")}

    def fieldkit(self, *argv: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FIELDKIT, *argv], env=self.env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def bundle(
        self,
        version: str = NEW,
        health: str = "ok",
        compatible: str = COMPATIBLE,
        signer: RaucSigner | None = None,
        size_bytes: int = 1024 * 1024,
    ) -> Path:
        """A fieldkit bundle whose rootfs payload is a real RAUC bundle or a real SWUpdate image."""
        name = f"{self.updater}-{version}-{health}-{size_bytes}-{abs(hash((compatible, signer is None)))}"
        out = self.work / f"voltiq-{name}.fwbundle"
        if out.exists():
            return out
        image = rig_image(version, size_bytes, health=health)
        signer = signer or self.keys.signer
        if self.updater == "rauc":
            payload = build_rauc_bundle(self.work / name, image, version, compatible, signer)
        elif self.updater == "mender":
            device_type = MENDER_DEVICE_TYPE if compatible == COMPATIBLE else "someone-elses-charger"
            payload = build_mender_artifact(self.work / name, image, version, device_type, signer)
        else:
            revision = "C" if compatible == COMPATIBLE else "Z"  # SWUpdate checks /etc/hwrevision
            payload = build_swu(self.work / name, image, version, revision, self.rig.slot_devices(), signer)
        template = {
            "schema": "fieldkit-bundle",
            "schema_version": 1,
            "bundle_id": f"voltiq-rig-{name}",
            "vendor": "Voltiq",
            "version": version,
            "security_version": 4,
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2036-06-01T00:00:00Z",
            "compatibility": [{"model": "VQ-AC22", "hardware_revisions": ["C"]}],
            "release_notes": f"rig release {version}",
            "components": [
                {"name": "rootfs", "target": "rootfs", "install_method": self.updater, "version": version, "order": 0}
            ],
        }
        limits = Limits()
        create_bundle(template, {"rootfs": payload}, out, limits)
        sign_bundle(out, demo_private_key("demo-release"), limits)
        return out

    def install_by_hand(self) -> None:
        """Install NEW as an interrupted job would have left it: written and made the boot target, not booted."""
        if self.updater == "rauc":
            payload = build_rauc_bundle(self.work / "by-hand", rig_image(NEW), NEW, COMPATIBLE, self.keys.signer)
            command = "rauc install /var/tmp/pending"
        elif self.updater == "mender":
            payload = build_mender_artifact(self.work / "by-hand", rig_image(NEW), NEW, MENDER_DEVICE_TYPE,
                                            self.keys.signer)  # fmt: skip
            command = "mender install /var/tmp/pending"
        else:
            payload = build_swu(
                self.work / "by-hand", rig_image(NEW), NEW, "C", self.rig.slot_devices(), self.keys.signer
            )
            command = "swupdate -B uboot -k /etc/swupdate/ca.pem -e stable,copyB -i /var/tmp/pending"
        if self.rig.user != "root" and self.updater != "rauc":
            command = "sudo -n " + command
        staged = self.rig.dir / "var-tmp" / "pending"
        staged.write_bytes(payload.read_bytes())
        staged.chmod(0o644)
        installed = subprocess.run(
            ["ssh", "-p", str(self.rig.port), "-i", str(self.rig.client_key), "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"{self.rig.user}@127.0.0.1", command],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stdout + installed.stderr

    def boot_target(self) -> str:
        """The slot the bootloader will boot next."""
        if self.updater == "rauc":
            return self.rig.env().order[0]
        if self.updater == "mender":
            number = int(self.rig.env_vars()["mender_boot_part"])
            return next(slot for slot, part in self.rig.partitions.items() if part == number)
        return self.rig.env_vars()["rootpart"]

    def slot_good(self, slot: str) -> bool:
        """Would the bootloader still boot this slot, now or as the fallback?"""
        if self.updater == "rauc":
            return self.rig.env().good(slot)
        target, trial = self.boot_target(), self.rig.env_vars()["upgrade_available"] == "1"
        committed = ("B" if target == "A" else "A") if trial else target
        return slot == committed or (slot == target and trial)

    def update_argv(self, bundle: Path, *extra: str) -> list[str]:
        return [
            "update",
            "--charger",
            self.rig.address,
            "--bundle",
            str(bundle),
            "--trust-store",
            str(self.keys.demo / "trust-store.json"),
            "--ssh-key",
            str(self.rig.client_key),
            "--yes",
            *extra,
        ]

    def journal(self) -> list[dict[str, object]]:
        return [json.loads(p.read_text()) for p in sorted((self.home / "data" / "jobs").glob("*.json"))]

    def assert_boots_a_good_image(self) -> None:
        """The charger runs, and boots a good image next; the factory slot A is still a good one."""
        assert not self.rig.bricked
        booted = self.rig.booted_slot()
        assert self.slot_good(booted) or self.rig.running_version() == FACTORY, (booted, self.rig.env_vars())
        assert self.slot_good(self.boot_target()), f"the next boot is not a good image: {self.rig.env_vars()}"
        if self.rig.running_version() == FACTORY or self.updater == "rauc":
            assert self.slot_good("A"), f"the factory slot A was good and must stay good: {self.rig.env_vars()}"


def _site(tmp_path: Path, keys: Keys, updater: Updater, server: Server, vendor_profile: bool) -> Iterator[Site]:
    rig = LinuxRig(tmp_path / "rig", server, updater=updater).prepare(
        FACTORY, keyring_pem=keys.signer.ca_pem, verify_key_pem=verify_key_pem(keys.signer)
    )
    (rig.dir / "etc-upper" / "hwrevision").write_text("VQ-AC22 C\n")
    rig.start()
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("health_stable_s = 0.5\nhealth_timeout_s = 10\n")
    (home / "pass").write_text("technician passphrase\n")
    if vendor_profile:
        (home / "profiles").mkdir()
        extra = ""
        if updater == "swupdate":
            extra = (PRIVILEGED if server == "dropbear" else "") + SWUPDATE_KEY
        (home / "profiles" / "voltiq-rig.toml").write_text(VENDOR_PROFILE.format(updater=updater, extra=extra))
    work = tmp_path / "work"
    work.mkdir()
    site = Site(rig, home, keys, work)
    made = site.fieldkit("identity", "init", "--technician-id", "T-1", "--name", "Rig", "--passphrase-file",
                         str(home / "pass"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    try:
        yield site
    finally:
        rig.dispose()


# RAUC and SWUpdate through sshd (root) and through dropbear as a service user (RAUC's D-Bus service does the
# root work; SWUpdate's programs run by sudo); Mender through sshd.
CHARGERS = [("rauc", "sshd"), ("rauc", "dropbear"), ("swupdate", "sshd"), ("swupdate", "dropbear"), ("mender", "sshd")]


@pytest.fixture(params=CHARGERS, ids=["-".join(c) for c in CHARGERS])
def site(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[Site]:
    updater, server = request.param
    yield from _site(tmp_path, keys, updater, server, vendor_profile=True)


@pytest.fixture(
    params=[("rauc", "dropbear"), ("swupdate", "sshd"), ("mender", "sshd")],
    ids=["rauc-dropbear", "swupdate-sshd", "mender-sshd"],
)
def generic_site(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[Site]:
    updater, server = request.param
    yield from _site(tmp_path, keys, updater, server, vendor_profile=False)


# Interrupting every step is the costliest part: each kind of charger once, each server once per kind of cut.
@pytest.fixture(
    params=[("rauc", "dropbear"), ("swupdate", "dropbear"), ("mender", "sshd")],
    ids=["rauc-dropbear", "swupdate-dropbear", "mender-sshd"],
)
def kill_site(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[Site]:
    updater, server = request.param
    yield from _site(tmp_path, keys, updater, server, vendor_profile=True)


@pytest.fixture(
    params=[("rauc", "sshd"), ("swupdate", "sshd"), ("mender", "sshd")],
    ids=["rauc-sshd", "swupdate-sshd", "mender-sshd"],
)
def power_site(request: pytest.FixtureRequest, tmp_path: Path, keys: Keys) -> Iterator[Site]:
    updater, server = request.param
    yield from _site(tmp_path, keys, updater, server, vendor_profile=True)


def _audit(site: Site) -> list[dict[str, object]]:
    listing = site.fieldkit("audit", "list", "--json", "--limit", "200")
    assert listing.returncode == 0, listing.stderr
    return list(json.loads(listing.stdout))


def test_a_stock_charger_is_identified_and_its_unknowns_must_be_confirmed(generic_site: Site) -> None:
    site = generic_site
    bundle = site.bundle()
    refused = site.fieldkit(*site.update_argv(bundle, "--accept-new-host-key"))
    assert refused.returncode == 13, refused.stderr
    assert "cannot tell whether a vehicle is charging" in refused.stderr
    assert "anti-rollback floor" in refused.stderr
    assert site.boot_target() == "A" and site.rig.boots() == [("A", FACTORY)], "nothing was touched"

    done = site.fieldkit(*site.update_argv(bundle, *CONFIRM))
    assert done.returncode == 0, done.stderr
    assert site.rig.booted_slot() == "B" and site.rig.running_version() == NEW
    assert site.boot_target() == "B" and site.slot_good("B")
    confirmed = [e for e in _audit(site) if e["action"] == "update.unknown-confirmed"]
    assert confirmed and "transaction" in str(confirmed[0]["note"])


def test_update_to_committed(site: Site) -> None:
    result = site.fieldkit(*site.update_argv(site.bundle(), "--accept-new-host-key", *CONFIRM[2:]))
    assert result.returncode == 0, result.stderr
    assert site.rig.boots() == [("A", FACTORY), ("B", NEW)]
    if site.updater == "rauc":
        env = site.rig.env()
        assert env.order[0] == "B" and env.left["B"] == 3, f"committed with mark-good: {env}"
        assert env.good("A"), "the previous image stays a good fallback"
    elif site.updater == "swupdate":
        env_vars = site.rig.env_vars()
        assert (env_vars["rootpart"], env_vars["upgrade_available"], env_vars["ustate"]) == ("B", "0", "0"), env_vars
    else:
        env_vars = site.rig.env_vars()
        assert env_vars["upgrade_available"] == "0" and site.boot_target() == "B", f"mender committed: {env_vars}"
    statuses = [e["status"] for e in _audit(site) if e["action"] == "update.transition"]
    assert statuses[-1] == "Committed"
    assert not list((site.rig.dir / "var-tmp" / "fieldkit-staging").glob("*")), "staging emptied"


def test_a_vehicle_charging_is_refused(site: Site) -> None:
    site.rig.set_transaction("active")
    site.rig.power_cut()  # the OCPP stack reports it from this boot on
    result = site.fieldkit(*site.update_argv(site.bundle(), "--accept-new-host-key", *CONFIRM[2:]))
    assert result.returncode == 13
    assert "a vehicle is charging" in result.stderr


@pytest.mark.parametrize("case", ["wrong-compatible", "untrusted-signer"])
def test_an_image_the_updater_refuses_is_a_refusal_with_its_own_reason(site: Site, case: str) -> None:
    bundle = (
        site.bundle(compatible="Someone else's charger")
        if case == "wrong-compatible"
        else site.bundle(signer=site.keys.stranger)
    )
    result = site.fieldkit(*site.update_argv(bundle, "--accept-new-host-key", *CONFIRM[2:]))
    assert result.returncode == 14, result.stderr
    reason = REFUSALS[(site.updater, case)]
    assert reason.lower() in result.stderr.lower(), result.stderr
    assert "the charger refused the update" in result.stderr and "nothing was installed" in result.stderr
    assert site.rig.boots() == [("A", FACTORY)], "no reboot: there was nothing to go back from"
    assert site.boot_target() == "A" and site.slot_good("A"), f"the running slot stays good: {site.rig.env_vars()}"
    if site.updater == "rauc":
        assert "mark-bad" not in (site.rig.dir / "rauc.log").read_text()


def test_an_unhealthy_new_image_is_abandoned_and_the_good_one_boots(site: Site) -> None:
    # This image's connectors never become Available, so only the timeout ends its health check: a short one
    # makes the test no less strict, only quicker (the suite's budget is minutes).
    (site.home / "config.toml").write_text("health_stable_s = 0.5\nhealth_timeout_s = 4\n")
    result = site.fieldkit(*site.update_argv(site.bundle(health="fail"), "--accept-new-host-key", *CONFIRM[2:]))
    assert result.returncode == 14, result.stderr
    assert "unhealthy" in result.stderr
    assert site.rig.boots() == [("A", FACTORY), ("B", NEW), ("A", FACTORY)]
    assert site.slot_good("A") and site.boot_target() == "A"
    if site.updater == "rauc":
        assert not site.rig.env().good("B"), f"only the new, unhealthy slot is marked bad: {site.rig.env()}"
    elif site.updater == "swupdate":
        assert site.rig.env_vars()["ustate"] == "3", "SWUpdate's state says the update failed"
    else:
        assert site.rig.env_vars()["upgrade_available"] == "0", "Mender's rollback ended the trial"


def test_rollback_with_nothing_pending_refuses_and_changes_nothing(site: Site) -> None:
    before = site.rig.env_vars()
    result = site.fieldkit("rollback", "--charger", site.rig.address, "--ssh-key", str(site.rig.client_key),
                           "--accept-new-host-key")  # fmt: skip
    assert result.returncode == 11, result.stderr
    assert "nothing to roll back" in result.stderr
    assert site.rig.env_vars() == before and site.rig.boots() == [("A", FACTORY)]


def test_rollback_of_an_installed_image_that_has_not_booted_keeps_the_running_slot(site: Site) -> None:
    """The brick scenario: RAUC's `mark-bad booted` here would mark the good running slot bad."""
    site.install_by_hand()
    assert site.boot_target() == "B"
    result = site.fieldkit("rollback", "--charger", site.rig.address, "--ssh-key", str(site.rig.client_key),
                           "--accept-new-host-key")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert site.boot_target() == "A" and site.slot_good("A"), f"the running slot boots again: {site.rig.env_vars()}"
    assert site.rig.boots() == [("A", FACTORY)]
    site.rig.power_cut()
    assert site.rig.boots()[-1] == ("A", FACTORY), "and it does boot"


def test_ctrl_c_before_install_stops_resumably_with_the_charger_untouched(site: Site) -> None:
    proxy = FaultyProxy(site.rig.port)
    proxy.rate_bytes_per_s = 2 * 1024 * 1024  # a 6 MiB image takes 3 s: Ctrl-C lands mid-transfer
    address = f"ssh://{site.rig.user}@127.0.0.1:{proxy.port}"
    argv = site.update_argv(site.bundle(size_bytes=6 * 1024 * 1024), "--accept-new-host-key", *CONFIRM[2:])
    argv[argv.index("--charger") + 1] = address
    try:
        process = subprocess.Popen([FIELDKIT, *argv], env=site.env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert _wait_for_step(site, "Downloading", process) == "Downloading"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "before anything was installed" in stderr
        assert site.rig.boots() == [("A", FACTORY)] and site.boot_target() == "A" and site.slot_good("A")
        assert site.journal()[-1]["state"] in STEPS[:3], "the job stays resumable"
        proxy.rate_bytes_per_s = None
        resumed = site.fieldkit("update", "--resume", "--charger", address, "--ssh-key", str(site.rig.client_key))
    finally:
        proxy.close()
    assert resumed.returncode == 0, resumed.stderr
    assert site.rig.running_version() == NEW


def test_ctrl_c_after_install_began_rolls_back_to_the_running_slot(site: Site) -> None:
    argv = site.update_argv(site.bundle(size_bytes=6 * 1024 * 1024), "--accept-new-host-key", *CONFIRM[2:])
    process = subprocess.Popen([FIELDKIT, *argv], env=site.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert _wait_for_step(site, "Installing", process) == "Installing"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 14, stderr
    assert "cancelled by the technician" in stderr
    assert site.rig.boots() == [("A", FACTORY)], "the install never booted: nothing to reboot for"
    assert site.boot_target() == "A" and site.slot_good("A"), site.rig.env_vars()
    assert site.journal()[-1]["state"] == "RolledBack"


def _wait_for_step(site: Site, step: str, process: subprocess.Popen[str], timeout_s: float = 60) -> str:
    """Poll the job journal until the job has begun ``step`` or a later one; returns the state seen.

    A step that lasts a few milliseconds (SignatureVerified hands straight on to Installing) may be
    passed between two polls: the cut then lands in the step right after it.
    """
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        for record in site.journal():
            seen = str(record["state"])
            if seen in STEPS[STEPS.index(step) :] or seen in ("Committed", "RolledBack"):
                return seen
        if process.poll() is not None:
            return seen or "exited"
        time.sleep(0.002)
    raise AssertionError(f"the job never reached {step} (last seen {seen})")


def _resume_until_finished(site: Site) -> dict[str, object]:
    for _ in range(5):
        result = site.fieldkit("update", "--resume", "--charger", site.rig.address, "--ssh-key",
                               str(site.rig.client_key))  # fmt: skip
        record = site.journal()[-1]
        if record["state"] in ("Committed", "RolledBack"):
            return record
        assert result.returncode in (10, 0), result.stderr  # 10: the link broke again (a reboot); resume again
    raise AssertionError(f"the job did not finish after 5 resumes: {site.journal()[-1]['state']}")


STEPS = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting", "Installed"]


@pytest.mark.parametrize("step", STEPS)
def test_fieldkit_killed_at_each_step_resumes_to_a_good_charger(kill_site: Site, step: str) -> None:
    site = kill_site
    argv = site.update_argv(site.bundle(), "--accept-new-host-key", *CONFIRM[2:])
    process = subprocess.Popen([FIELDKIT, *argv], env=site.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    landed = _wait_for_step(site, step, process)
    assert landed in STEPS, f"the job ended ({landed}) before it could be interrupted at {step}"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    record = site.journal()[-1]
    if record["state"] not in ("Committed", "RolledBack"):
        record = _resume_until_finished(site)
    assert record["state"] == "Committed", (landed, record.get("error"))
    assert site.rig.running_version() == NEW
    site.assert_boots_a_good_image()


@pytest.mark.parametrize("step", STEPS)
def test_a_power_cut_at_each_step_leaves_a_good_charger(power_site: Site, step: str) -> None:
    site = power_site
    argv = site.update_argv(site.bundle(), "--accept-new-host-key", *CONFIRM[2:])
    process = subprocess.Popen([FIELDKIT, *argv], env=site.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    landed = _wait_for_step(site, step, process)
    assert landed in STEPS, f"the job ended ({landed}) before it could be interrupted at {step}"
    site.rig.power_cut()
    process.wait(timeout=180)
    site.assert_boots_a_good_image()
    record = site.journal()[-1]
    if record["state"] not in ("Committed", "RolledBack"):
        record = _resume_until_finished(site)
    assert record["state"] in ("Committed", "RolledBack"), (landed, record)
    expected = NEW if record["state"] == "Committed" else FACTORY
    assert site.rig.running_version() == expected, (landed, record.get("error"), site.rig.boots())
    site.assert_boots_a_good_image()
