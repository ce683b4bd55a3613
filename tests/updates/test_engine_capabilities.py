"""The engine against every combination of driver capabilities, through the in-memory driver.

A DFU-like device (no read-back, no trial boot, no health check), an MCU
(trial boot, no health check), a Linux-like charger whose new image never
becomes healthy, a recovery console that hands the job over to the system it
wrote, and jobs resumed after a crash: the engine must branch on what the
driver declares, and the journal and audit trail must say what really ran.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from fieldkit.bundles.manifest import Manifest
from fieldkit.config import Settings
from fieldkit.drivers.base import Driver
from fieldkit.drivers.registry import driver_for
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.faults import FaultPlan
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.memory_driver import MemoryDriver
from fieldkit.updates.engine import UpdateJob
from fieldkit.updates.journal import JobRecord, Journal
from fieldkit.updates.states import JobState
from tests.support.bundle_lab import BundleLab, with_components

NEW = "2.5.0"


@dataclass
class Bench:
    """A simulated VQ-AC22, a verified bundle for it, a journal, and the audit entries the engine wrote."""

    state: Path
    bundle: Path
    manifest: Manifest
    journal: Journal
    audited: list[tuple[str, str]] = field(default_factory=list)  # (status, note)

    def record(self, address: str) -> JobRecord:
        identity = asyncio.run(MemoryDriver(self.state).identify())
        return self.journal.create(
            JobRecord(
                charger_address=address,
                charger_serial=identity.serial,
                bundle_path=str(self.bundle),
                bundle_id=self.manifest.bundle_id,
                components=["rootfs"],
                from_versions={"rootfs": identity.components["rootfs"].version},
                to_versions={"rootfs": NEW},
            )
        )

    def job(self, record: JobRecord, driver: Driver) -> UpdateJob:
        def hook(_: JobRecord, status: str, note: str) -> None:
            self.audited.append((status, note))

        return UpdateJob(
            record,
            self.manifest,
            driver,
            self.journal,
            hook,
            open_driver=lambda address: driver_for(address, Settings()),
        )

    def note_of(self, status: JobState) -> str:
        return next(note for seen, note in self.audited if seen == status.value)

    def device(self) -> tuple[str | None, str]:
        rootfs = SimulatedCharger(self.state).status()["components"]["rootfs"]
        return rootfs["running_version"], rootfs["state"]


def _bench(lab: BundleLab, tmp_path: Path, install_method: str, ways: dict[str, list[str]] | None = None) -> Bench:
    """``ways``: a format 2 bundle with these install ways instead of format 1's one method."""
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model_named("VQ-AC22"), "SN-CAPS")
    image = ImageHeader("Voltiq", "VQ-AC22", "rootfs", NEW, 5).to_bytes() + os.urandom(200_000)
    document = with_components(lab.manifest({"rootfs": image}), install_method=install_method)
    if ways is not None:
        document["schema_version"] = 2
        del document["components"][0]["install_method"]
        document["components"][0]["install"] = ways
    bundle = lab.bundle({"rootfs": image}, manifest=document)
    report = lab.verify(bundle)
    report.raise_if_invalid()
    assert report.manifest is not None
    journal = Journal(tmp_path / "jobs")
    journal.directory.mkdir()
    return Bench(state, bundle, report.manifest, journal)


def _run(job: UpdateJob, stop_at: JobState | None = None) -> JobRecord:
    """Run ``job`` to its end, or abandon it (a crash) as soon as it journals ``stop_at``."""

    async def drive() -> None:
        async for event in job.run():
            if event.state == stop_at:
                return

    asyncio.run(drive())
    return job.record


def _verification_ran(record: JobRecord) -> str:
    return next(str(step["verification"]) for step in record.history if step["state"] == "SignatureVerified")


def test_without_read_back_trial_boot_or_health_check_the_job_says_so(lab: BundleLab, tmp_path: Path) -> None:
    bench = _bench(lab, tmp_path, "dfu")
    record = _run(bench.job(bench.record("sim://dfu"), MemoryDriver(bench.state, "dfu")))
    assert record.state == "Committed"
    assert bench.device() == (NEW, "committed")
    assert _verification_ran(record) == "streamed_hash"
    assert "streamed" in bench.note_of(JobState.SIGNATURE_VERIFIED)
    assert "no health check" in bench.note_of(JobState.INSTALLED)
    assert "no trial boot" in bench.note_of(JobState.COMMITTED)


def test_a_trial_boot_without_a_health_check_is_committed_on_the_running_version(
    lab: BundleLab, tmp_path: Path
) -> None:
    bench = _bench(lab, tmp_path, "mcumgr-smp")
    record = _run(bench.job(bench.record("sim://mcu"), MemoryDriver(bench.state, "mcu")))
    assert record.state == "Committed"
    assert bench.device() == (NEW, "committed"), "the trial image was committed on the device"
    assert _verification_ran(record) == "device_image_hash"
    assert "no health check on this charger; it runs" in bench.note_of(JobState.INSTALLED)


def test_an_unhealthy_image_with_a_health_check_is_rolled_back(lab: BundleLab, tmp_path: Path) -> None:
    bench = _bench(lab, tmp_path, "rauc")
    driver = MemoryDriver(bench.state, "linux", faults=FaultPlan(never_available=True))
    record = _run(bench.job(bench.record("sim://linux"), driver))
    assert record.state == "RolledBack"
    assert "health check failed" in (record.error or "")
    assert bench.device() == ("2.3.0", "committed")


def _addresses(state: Path) -> tuple[str, str]:
    system = f"sim://{state}?kind=linux"
    return f"sim://{state}?kind=recovery&handover={quote(system, safe='')}", system


# Written through U-Boot's console, committed by the Linux system's own updater once it has booted.
RECOVERY_WAYS = {"serial": ["uboot-ymodem"], "ssh": ["rauc"]}


def test_a_reboot_hands_the_job_to_the_driver_at_the_new_address(lab: BundleLab, tmp_path: Path) -> None:
    bench = _bench(lab, tmp_path, "uboot-ymodem", RECOVERY_WAYS)
    recovery, system = _addresses(bench.state)
    record = _run(bench.job(bench.record(recovery), driver_for(recovery, Settings())))
    assert record.state == "Committed"
    assert record.charger_address == system
    assert bench.journal.load(record.job_id).charger_address == system, "the hand-over is journaled"
    assert [s["handed_over"] for s in record.history if "handed_over" in s] == [{"from": recovery, "to": system}]
    assert "connectors" in bench.note_of(JobState.INSTALLED), "the new driver's health check ran"
    assert bench.device() == (NEW, "committed")
    assert record.install_methods == {"rootfs": "rauc"}, "the Linux driver's way, chosen again at the hand-over"


def test_a_bundle_with_no_way_this_driver_speaks_is_refused_before_anything_is_sent(
    lab: BundleLab, tmp_path: Path
) -> None:
    bench = _bench(lab, tmp_path, "uboot-ymodem")  # format 1: the console's way only
    record = _run(bench.job(bench.record("sim://linux"), MemoryDriver(bench.state, "linux")))
    assert record.state == "Refused"
    assert "cannot install rootfs in any way the bundle accepts" in (record.error or "")
    assert bench.device() == ("2.3.0", "committed")


def test_a_job_interrupted_after_a_hand_over_resumes_at_the_new_address(lab: BundleLab, tmp_path: Path) -> None:
    bench = _bench(lab, tmp_path, "uboot-ymodem", RECOVERY_WAYS)
    recovery, system = _addresses(bench.state)
    crashed = _run(bench.job(bench.record(recovery), driver_for(recovery, Settings())), stop_at=JobState.INSTALLED)
    assert crashed.state == "Installed"
    resumed = bench.journal.load(crashed.job_id)  # a restarted laptop knows only its journal
    assert resumed.charger_address == system
    record = _run(bench.job(resumed, driver_for(resumed.charger_address, Settings())))
    assert record.state == "Committed"
    assert bench.device() == (NEW, "committed")


class CountingDriver(MemoryDriver):
    activations = 0

    async def activate(self, component: str, sha256: str, install_method: str) -> None:
        CountingDriver.activations += 1
        await super().activate(component, sha256, install_method)


@pytest.mark.parametrize("installed_before_the_crash", [True, False])
def test_a_job_resumed_in_installing_asks_the_driver_what_is_installed(
    lab: BundleLab, tmp_path: Path, installed_before_the_crash: bool
) -> None:
    bench = _bench(lab, tmp_path, "mcumgr-smp")
    CountingDriver.activations = 0
    crashed = _run(
        bench.job(bench.record("sim://mcu"), CountingDriver(bench.state, "mcu")), stop_at=JobState.INSTALLING
    )
    assert (crashed.state, CountingDriver.activations) == ("Installing", 0)
    if installed_before_the_crash:  # the crashed run got as far as installing, not as far as journaling it
        sha256 = bench.manifest.components[0].sha256
        asyncio.run(MemoryDriver(bench.state, "mcu").activate("rootfs", sha256, "mcumgr-smp"))
    record = _run(bench.job(bench.journal.load(crashed.job_id), CountingDriver(bench.state, "mcu")))
    assert record.state == "Committed"
    assert CountingDriver.activations == (0 if installed_before_the_crash else 1)
    assert bench.device() == (NEW, "committed")
