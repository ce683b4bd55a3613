"""`fieldkit update` end to end: the real program, a real OpenSSH sshd, a simulated charger."""

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

from fieldkit.demo import init_demo
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.shell import write_shims
from tests.support.drivers import settled_size
from tests.support.laptop import write_laptop_config
from tests.support.netfault import FaultyProxy
from tests.support.sshd import Sshd, sshd_available

pytestmark = pytest.mark.skipif(not sshd_available(), reason="needs OpenSSH sshd (apt-get install openssh-server)")
FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))


@dataclass
class Site:
    home: Path
    demo: Path
    state: Path
    sshd: Sshd

    def env(self) -> dict[str, str]:
        return {**os.environ, "FIELDKIT_HOME": str(self.home), "FIELDKIT_PASSPHRASE_FILE": str(self.home / "pass")}

    def update_argv(self, bundle: str, *extra: str, port: int | None = None) -> list[str]:
        """`fieldkit update` of ``bundle`` on this charger; ``port``: a proxy's in front of sshd, else sshd's own."""
        return [
            FIELDKIT,
            "update",
            "--charger",
            f"ssh://{self.sshd.user}@127.0.0.1:{port or self.sshd.port}",
            "--bundle",
            str(self.demo / bundle),
            "--trust-store",
            str(self.demo / "trust-store.json"),
            "--ssh-key",
            str(self.sshd.client_key),
            "--yes",
            *extra,
        ]

    def fieldkit(self, *argv: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=self.env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def charger(self) -> dict[str, object]:
        return SimulatedCharger(self.state).status()

    def staged_images(self) -> list[Path]:
        """What the charger still holds in its staging directory (the one it names in its identity)."""
        return sorted(SimulatedCharger(self.state).staging_dir.glob("*.img"))


def _site(tmp_path: Path, faults: str = "", payload_bytes: int = 256 * 1024, serial: str = "SN-E2E") -> Iterator[Site]:
    home = tmp_path / "home"
    home.mkdir()
    write_laptop_config(home, tmp_path / "staging", 1, 8)
    (home / "pass").write_text("technician passphrase\n")
    demo = tmp_path / "demo"
    init_demo(demo, payload_bytes)
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model_named("VQ-AC22"), serial)
    shims = write_shims(tmp_path / "shims", sys.executable)
    server = Sshd(
        tmp_path / "sshd",
        extra_config=(f"SetEnv PATH={shims}:/usr/bin:/bin FIELDKIT_SIM_STATE={state} FIELDKIT_SIM_FAULTS={faults}\n"),
    )
    server.start()
    site = Site(home, demo, state, server)
    result = site.fieldkit(
        FIELDKIT, "identity", "init", "--technician-id", "T-1", "--name", "E2E", "--passphrase-file", str(home / "pass")
    )
    assert result.returncode == 0, result.stderr
    yield site
    server.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path)


def _audit_statuses(site: Site) -> list[str]:
    listing = site.fieldkit(FIELDKIT, "audit", "list", "--json", "--limit", "100")
    return [e["status"] for e in json.loads(listing.stdout) if e["action"] == "update.transition"]


def test_update_to_committed(site: Site) -> None:
    result = site.fieldkit(*site.update_argv("demo-vq-ac22-2.4.0.fwbundle", "--accept-new-host-key"))
    assert result.returncode == 0, result.stderr
    assert "Committed" in result.stdout
    component = site.charger()["components"]["rootfs"]  # type: ignore[index]
    assert (component["running_version"], component["state"]) == ("2.4.0", "committed")
    assert _audit_statuses(site) == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "InstallRebooting",
        "Installed",
        "Committed",
    ]
    assert site.fieldkit(FIELDKIT, "audit", "verify").returncode == 0
    assert site.staged_images() == [], "a finished job leaves nothing in the charger's staging space"


def test_text_from_the_charger_is_shown_as_text_not_as_markup_or_terminal_codes(tmp_path: Path) -> None:
    """A serial with Rich markup and an escape sequence: the update commits, and every listing shows it inert."""
    serial = "SN[/][bold]\x1b]0;owned\x07"
    for site in _site(tmp_path, serial=serial):
        result = site.fieldkit(*site.update_argv("demo-vq-ac22-2.4.0.fwbundle", "--accept-new-host-key"))
        assert result.returncode == 0, result.stderr
        assert "Committed: SN[/][bold]\\x1b]0;owned\\x07 now runs rootfs 2.4.0" in result.stdout
        listing = site.fieldkit(FIELDKIT, "audit", "list", "--limit", "3")
        assert listing.returncode == 0, listing.stderr
        assert "\x1b" not in listing.stdout and "\x07" not in listing.stdout
        assert "SN[/]" in listing.stdout


def test_an_image_that_never_becomes_available_is_rolled_back(tmp_path: Path) -> None:
    for site in _site(tmp_path, faults="never-available"):
        # Only the timeout ends this health check: a short one is as strict here, and quicker.
        write_laptop_config(tmp_path / "home", tmp_path / "staging", 1, 3)
        result = site.fieldkit(*site.update_argv("demo-vq-ac22-2.4.0.fwbundle", "--accept-new-host-key"))
        assert result.returncode == 14, result.stderr
        assert "rolled back" in result.stderr and result.stderr.count("\n") == 1
        component = site.charger()["components"]["rootfs"]  # type: ignore[index]
        assert (component["running_version"], component["state"]) == ("2.3.0", "committed")
        assert _audit_statuses(site)[-3:] == ["InstallationFailed", "RollingBack", "RolledBack"]
        assert site.staged_images() == []


@pytest.mark.parametrize(
    ("bundle", "text"),
    [
        ("demo-vq-ac11-3.0.0-OTHER-MODEL.fwbundle", "not VQ-AC22"),
        ("demo-vq-ac22-1.9.0-DOWNGRADE.fwbundle", "below the charger's floor"),
        ("demo-vq-ac22-2.2.0-EXPIRED.fwbundle", "expired"),
    ],
)
def test_preflight_refusals(site: Site, bundle: str, text: str) -> None:
    result = site.fieldkit(*site.update_argv(bundle, "--accept-new-host-key"))
    assert result.returncode == 13, result.stderr
    assert text in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert site.charger()["components"]["rootfs"]["running_version"] == "2.3.0"  # type: ignore[index]


def test_a_charging_vehicle_blocks_the_update(site: Site) -> None:
    SimulatedCharger(site.state).start_transaction(1)
    result = site.fieldkit(*site.update_argv("demo-vq-ac22-2.4.0.fwbundle", "--accept-new-host-key"))
    assert result.returncode == 13 and "vehicle is charging" in result.stderr
    listing = json.loads(site.fieldkit(FIELDKIT, "audit", "list", "--json").stdout)
    [refusal] = [e for e in listing if e["action"] == "update.refused"]
    assert refusal["status"] == "Refused" and "vehicle is charging" in refusal["error"]
    assert refusal["charger"]["serial"] == "SN-E2E"


def test_a_changed_host_key_is_refused(site: Site) -> None:
    assert site.fieldkit(*site.update_argv("demo-vq-ac22-2.4.0.fwbundle", "--accept-new-host-key")).returncode == 0
    site.sshd.stop()
    site.sshd.new_host_key()
    site.sshd.start()
    result = site.fieldkit(*site.update_argv("demo-vq-ac22-2.4.0.fwbundle", "--accept-new-host-key"))
    assert result.returncode == 10 and "is pinned for it" in result.stderr


def test_resume_after_the_laptop_process_is_killed_mid_transfer(tmp_path: Path) -> None:
    for site in _site(tmp_path, payload_bytes=16 * 1024 * 1024):
        # A slow link (4 MiB/s, so about 4 s for the payload) makes sure the kill lands mid-transfer
        # however fast this machine copies over loopback.
        link = FaultyProxy(site.sshd.port)
        link.rate_bytes_per_s = 4 * 1024 * 1024
        try:
            process = subprocess.Popen(
                site.update_argv("demo-vq-ac22-2.4.0.fwbundle", "--accept-new-host-key", "--json", port=link.port),
                env=site.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert process.stdout is not None
            deadline = time.monotonic() + 60
            for line in process.stdout:  # wait until the transfer is under way
                event = json.loads(line)
                if event.get("state") == "Downloading" and 0 < event.get("bytes_done", 0) < event["bytes_total"] // 2:
                    break
                assert time.monotonic() < deadline
            else:
                raise AssertionError("the update ended before a mid-transfer progress event")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            link.rate_bytes_per_s = None  # the resumed run goes through the same address, now at full speed
            job = next((site.home / "data" / "jobs").glob("*.json"))
            assert json.loads(job.read_text())["state"] == "Downloading"
            [staged] = site.staged_images()
            # Writes already in flight when the laptop died still land: wait for the copy to settle.
            kept = settled_size(staged, interval_s=0.5)
            assert kept > 0
            resumed = site.fieldkit(
                FIELDKIT, "update", "--resume", "--trust-store", str(site.demo / "trust-store.json")
            )
            assert resumed.returncode == 0, resumed.stderr
            record = json.loads(job.read_text())
            assert record["state"] == "Committed"
            sent = next(h["bytes_sent"] for h in record["history"] if h["state"] == "Downloaded")
            assert sent == record["bytes_total"] - kept, "the resumed transfer sent only what the charger lacked"
            assert "Resumed" in _audit_statuses(site)
            assert site.charger()["components"]["rootfs"]["running_version"] == "2.4.0"  # type: ignore[index]
        finally:
            link.close()
