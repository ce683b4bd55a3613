"""The update engine in-process against the simulator's SSH endpoint: multi-component
bundles, cancellation, and transfers resumed after many dropped links."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from pathlib import Path

import pytest

from fieldkit.bundles import trustops
from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.manifest import Manifest
from fieldkit.bundles.verify import verify_bundle
from fieldkit.config import Settings
from fieldkit.demo import init_demo
from fieldkit.domain import PayloadSource
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.errors import LinkLostError
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.transports.ssh import SFTP_CHUNK_BYTES
from fieldkit.updates.engine import JobCancelledError, UpdateJob
from fieldkit.updates.journal import JobRecord, Journal
from fieldkit.updates.states import JobState
from tests.support.drivers import loopback_driver
from tests.support.simssh import RunningSim, running_sim

METROLOGY_BUNDLE = "demo-vq-dc150-4.2.0-meter-METROLOGY.fwbundle"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    init_demo(directory, 4 * 1024 * 1024)
    return directory


def _manifest(demo: Path, bundle: str) -> Manifest:
    state = TrustedState.in_memory()
    store = trustops.open_store(demo / "trust-store.json", Settings().limits, state)
    report = verify_bundle(demo / bundle, store.body, state, Settings())
    report.raise_if_invalid()
    assert report.manifest is not None
    return report.manifest


def _driver(sim: RunningSim, tmp_path: Path) -> LinuxSshDriver:
    return loopback_driver("root", sim.server.port, sim.client_key, tmp_path)


class Job:
    """An UpdateJob as `fieldkit update` makes one, with its audit hook collecting (status, component)."""

    def __init__(self, demo: Path, bundle: str, sim: RunningSim, tmp_path: Path) -> None:
        self.manifest = _manifest(demo, bundle)
        self.journal = Journal(tmp_path / "jobs")
        self.journal.directory.mkdir(exist_ok=True)
        self.driver = _driver(sim, tmp_path)
        identity = asyncio.run(self.driver.identify())
        components = self.manifest.components_in_order()
        self.record = self.journal.create(
            JobRecord(
                charger_address=sim.address,
                charger_serial=identity.serial,
                bundle_path=str(demo / bundle),
                bundle_id=self.manifest.bundle_id,
                components=[c.name for c in components],
                from_versions={c.name: identity.components[c.name].version for c in components},
                to_versions={c.name: c.version for c in components},
                baseline_meter_wh=identity.meter_wh,
            )
        )
        self.audited: list[tuple[str, str]] = []

    def _hook(self, record: JobRecord, status: str, note: str) -> None:
        self.audited.append((status, record.components[min(record.component_index, len(record.components) - 1)]))

    def engine(self, record: JobRecord | None = None) -> UpdateJob:
        return UpdateJob(record or self.record, self.manifest, self.driver, self.journal, self._hook)

    def run(self, engine: UpdateJob | None = None) -> JobRecord:
        engine = engine or self.engine()

        async def drive() -> None:
            async for _ in engine.run():
                pass

        try:
            asyncio.run(drive())
        finally:
            self.driver.close()
        return engine.record


def _versions(state: Path) -> dict[str, tuple[str, str]]:
    components = SimulatedCharger(state).status()["components"]
    return {name: (c["running_version"], c["state"]) for name, c in components.items()}


def test_components_install_in_manifest_order_and_commit_together(demo: Path, tmp_path: Path) -> None:
    with running_sim(tmp_path / "charger", "VQ-DC150") as sim:
        job = Job(demo, METROLOGY_BUNDLE, sim, tmp_path)
        record = job.run()
    assert record.state == "Committed"
    assert _versions(sim.state) == {"rootfs": ("4.2.0", "committed"), "meter": ("4.2.0", "committed")}
    installing = [component for status, component in job.audited if status == "Installing"]
    assert installing == ["rootfs", "meter"]


def test_a_failure_in_a_later_component_rolls_back_the_earlier_ones(demo: Path, tmp_path: Path) -> None:
    with running_sim(tmp_path / "charger", "VQ-DC150", ("fail-install:component=meter",)) as sim:
        job = Job(demo, METROLOGY_BUNDLE, sim, tmp_path)
        record = job.run()
    assert record.state == "RolledBack"
    assert "flash verify error" in (record.error or "")
    assert [s for s, _ in job.audited][-3:] == ["InstallationFailed", "RollingBack", "RolledBack"]
    # rootfs had been installed into its other slot; the rollback abandoned it before it ever ran.
    assert _versions(sim.state) == {"rootfs": ("4.1.0", "committed"), "meter": ("4.1.0", "committed")}
    charger = SimulatedCharger(sim.state)
    assert all(c.pending is None for c in charger.components.values())


def test_cancel_during_the_transfer_leaves_a_resumable_job_and_an_untouched_charger(demo: Path, tmp_path: Path) -> None:
    with running_sim(tmp_path / "charger", "VQ-AC22", ("rate:1048576",)) as sim:
        job = Job(demo, "demo-vq-ac22-2.4.0.fwbundle", sim, tmp_path)
        engine = job.engine()

        async def cancel_mid_transfer() -> None:
            async for event in engine.run():
                if event.state == JobState.DOWNLOADING and event.bytes_done > 0:
                    engine.cancel()

        with pytest.raises(JobCancelledError, match="before anything was installed"):
            asyncio.run(cancel_mid_transfer())
        job.driver.close()
        saved = job.journal.load(job.record.job_id)
        assert saved.state == "Downloading" and 0 < saved.bytes_done < saved.bytes_total
        assert _versions(sim.state) == {"rootfs": ("2.3.0", "committed")}
        sim.server.faults.rate_bytes_per_s = None
        assert job.run(job.engine(saved)).state == "Committed"
    assert _versions(sim.state) == {"rootfs": ("2.4.0", "committed")}


def test_cancel_after_installing_began_rolls_back_instead_of_stopping_half_way(demo: Path, tmp_path: Path) -> None:
    with running_sim(tmp_path / "charger", "VQ-AC22") as sim:
        job = Job(demo, "demo-vq-ac22-2.4.0.fwbundle", sim, tmp_path)
        engine = job.engine()

        async def cancel_while_installing() -> None:
            async for event in engine.run():
                if event.state == JobState.INSTALLING:
                    engine.cancel()

        asyncio.run(cancel_while_installing())
        job.driver.close()
    assert engine.record.state == "RolledBack"
    assert engine.record.error == "cancelled by the technician after installing began"
    assert _versions(sim.state) == {"rootfs": ("2.3.0", "committed")}


def test_twenty_link_drops_at_random_offsets_each_resend_at_most_one_chunk(tmp_path: Path) -> None:
    header = ImageHeader("Voltiq", "VQ-AC22", "rootfs", "2.4.0", 4).to_bytes()
    image = tmp_path / "rootfs.img"
    image.write_bytes(header + os.urandom(24 * 1024 * 1024 - len(header)))
    payload = PayloadSource.whole_file(image, hashlib.sha256(image.read_bytes()).hexdigest())
    offsets = sorted(random.Random(2026).sample(range(1, payload.size_bytes), 20))
    with running_sim(tmp_path / "charger") as sim:
        driver = _driver(sim, tmp_path)
        staged = Path(driver.staged_path(payload.sha256))
        budget = sim.server.budget
        held = 0  # what the charger holds of the image
        try:
            for offset in offsets:
                asyncio.run(driver.identify())  # (re)connect first: a new connection clears a spent fault
                budget.plan.link_drop_byte = budget.received + max(1, offset - held)
                received_before = budget.received
                with pytest.raises(LinkLostError):
                    asyncio.run(driver.transfer("rootfs", payload, None))
                driver.close()
                landed = staged.stat().st_size
                assert landed >= held, "what the charger held is never thrown away"
                # Everything that reached the charger in this attempt beyond what it already held is new:
                # nothing it had was sent again.
                resent = (budget.received - received_before) - (landed - held)
                assert resent <= SFTP_CHUNK_BYTES, f"drop at {offset}: {resent} bytes sent twice"
                held = landed
            received_before = budget.received
            sent = asyncio.run(driver.transfer("rootfs", payload, None))
            assert sent == payload.size_bytes - held
            assert budget.received - received_before == sent
            asyncio.run(driver.verify("rootfs", payload))
        finally:
            driver.close()
    assert staged.read_bytes() == image.read_bytes()


def test_fieldkit_rollback_abandons_a_trial_image_and_audits_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldkit.cli.main import main

    monkeypatch.setenv("FIELDKIT_HOME", str(tmp_path / "home"))
    header = ImageHeader("Voltiq", "VQ-AC22", "rootfs", "2.4.0", 4).to_bytes()
    image = tmp_path / "rootfs.img"
    image.write_bytes(header + os.urandom(300_000))
    payload = PayloadSource.whole_file(image, hashlib.sha256(image.read_bytes()).hexdigest())
    with running_sim(tmp_path / "charger") as sim:
        driver = _driver(sim, tmp_path)

        async def trial() -> None:
            await driver.transfer("rootfs", payload, None)
            await driver.activate("rootfs", payload.sha256, "rauc")
            await driver.reboot()

        asyncio.run(trial())
        driver.close()
        assert _versions(sim.state) == {"rootfs": ("2.4.0", "pending")}
        argv = ["rollback", "--charger", sim.address, "--ssh-key", str(sim.client_key), "--accept-new-host-key"]
        assert main(argv) == 0
    assert "now running rootfs 2.3.0" in capsys.readouterr().out
    assert _versions(sim.state) == {"rootfs": ("2.3.0", "committed")}
