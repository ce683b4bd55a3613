"""The driver contract: what every driver must do, run against every driver and the real peers.

Each case runs against the in-memory driver in each of its kinds (a Linux-like
charger, an MCU with no health check or safety facts, a DFU-like device with
no read-back, no trial boot and no way back), the SSH driver against the
simulator (over real sshd), and the SSH driver against the rig (real RAUC
1.8, U-Boot environment, generic RAUC profile). The simulator's RAUC once
behaved as the driver expected rather than as RAUC does, and tests against it
passed while a real charger's good slot would have been marked bad: the
simulator may not pass what the real one fails. A new driver joins by adding
a subject here (README: "Adding a driver").

After every case the charger must run a good image, and no slot that was good
may have been marked bad.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldkit.domain import Capabilities, FactSource, PayloadSource, Resume, Revert, Verification
from fieldkit.drivers.base import Driver
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.drivers.smp import SmpDriver
from fieldkit.errors import DeviceRefusedError
from fieldkit.simulator.catalog import SimulatedComponent, SimulatedModel, model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.mcuboot_image import mcuboot_image
from fieldkit.simulator.memory_driver import KINDS, MemoryDriver
from fieldkit.simulator.shell import write_shims
from fieldkit.transports.byte_stream import open_byte_stream
from fieldkit.transports.ssh import SshSession, SshTarget
from tests.support.raucbundle import build_rauc_bundle, make_signer
from tests.support.rig import COMPATIBLE, LinuxRig, rig_image, rig_missing
from tests.support.smp import serving
from tests.support.sshd import Sshd, sshd_available

OLD, NEW = "2.3.0", "2.4.0"
COMPONENT = "rootfs"


@dataclass
class Subject:
    name: str
    driver: Driver
    reopen: Callable[[], Driver]  # another driver to the same charger, as after a laptop restart
    install_method: str
    payload: PayloadSource  # the NEW image, in the form this charger installs
    refused: PayloadSource  # an image this charger refuses to install (another model, another compatible)
    booted: Callable[[], str]  # the slot the charger runs, from its own state
    good: Callable[[str], bool]  # would its bootloader still boot this slot?
    boots: Callable[[], int]
    component: str = COMPONENT

    @property
    def capabilities(self) -> Capabilities:
        return self.driver.capabilities

    @property
    def methods(self) -> dict[str, str]:
        return {self.component: self.install_method}


def _payload(path: Path, data: bytes) -> PayloadSource:
    path.write_bytes(data)
    return PayloadSource.whole_file(path, hashlib.sha256(data).hexdigest())


def _simulated_images(tmp_path: Path) -> tuple[PayloadSource, PayloadSource]:
    """A new VQ-AC22 image of 700 KB (several progress reports of every driver), and one for another model."""
    new = ImageHeader("Voltiq", "VQ-AC22", COMPONENT, NEW, 4).to_bytes() + os.urandom(700_000)
    other = ImageHeader("Voltiq", "VQ-DC150", COMPONENT, NEW, 4).to_bytes() + os.urandom(50_000)
    return _payload(tmp_path / "new.img", new), _payload(tmp_path / "other-model.img", other)


def _device_slots(
    state: Path, component: str = COMPONENT
) -> tuple[Callable[[], str], Callable[[str], bool], Callable[[], int]]:
    def booted() -> str:
        return SimulatedCharger(state).components[component].active

    def good(slot: str) -> bool:
        image = SimulatedCharger(state).components[component]
        return image.slots.get(slot) is not None and slot in (image.committed, image.pending)

    def boots() -> int:
        return SimulatedCharger(state).boot_count

    return booted, good, boots


def _memory(tmp_path: Path, kind: str) -> Iterator[Subject]:
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model_named("VQ-AC22"), "SN-CONTRACT")
    payload, refused = _simulated_images(tmp_path)
    driver = MemoryDriver(state, kind)
    method = next(iter(sorted(driver.capabilities.install_methods))) if kind != "linux" else "rauc"
    yield Subject(
        f"memory-{kind}", driver, lambda: MemoryDriver(state, kind), method, payload, refused, *_device_slots(state)
    )


def _ssh_driver(user: str, port: int, key: Path, tmp_path: Path, staging: str) -> LinuxSshDriver:
    target = SshTarget(user, "127.0.0.1", port)
    return LinuxSshDriver(
        lambda: SshSession(target, tmp_path / "known_hosts", key_file=key, accept_new_host_key=True),
        staging_dir=staging,
        health_stable_s=0.3,
        health_timeout_s=10,
        poll_s=0.05,
        reboot_timeout_s=30,
    )


def _simulator(tmp_path: Path) -> Iterator[Subject]:
    if not sshd_available():
        pytest.skip("needs OpenSSH sshd")
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model_named("VQ-AC22"), "SN-CONTRACT")
    shims = write_shims(tmp_path / "shims", sys.executable)
    server = Sshd(tmp_path / "sshd", extra_config=f"SetEnv PATH={shims}:/usr/bin:/bin FIELDKIT_SIM_STATE={state}\n")
    server.start()
    payload, refused = _simulated_images(tmp_path)

    def connect() -> LinuxSshDriver:
        return _ssh_driver(server.user, server.port, server.client_key, tmp_path, str(tmp_path / "staging"))

    driver = connect()
    try:
        yield Subject("ssh-simulator", driver, connect, "rauc", payload, refused, *_device_slots(state))
    finally:
        driver.close()
        server.stop()


def _rig(tmp_path: Path) -> Iterator[Subject]:
    if rig_missing() is not None:
        pytest.skip(rig_missing() or "")
    signer = make_signer(tmp_path / "keys", "Voltiq")
    rig = LinuxRig(tmp_path / "rig", "sshd").prepare(OLD, keyring_pem=signer.ca_pem)
    rig.start()
    raucb = build_rauc_bundle(tmp_path / "bundle", rig_image(NEW), NEW, COMPATIBLE, signer)
    wrong = build_rauc_bundle(tmp_path / "wrong", rig_image(NEW), NEW, "Voltiq VQ-DC150 rev A", signer)
    payload = PayloadSource.whole_file(raucb, hashlib.sha256(raucb.read_bytes()).hexdigest())
    refused = PayloadSource.whole_file(wrong, hashlib.sha256(wrong.read_bytes()).hexdigest())

    def connect() -> LinuxSshDriver:
        return _ssh_driver(rig.user, rig.port, rig.client_key, tmp_path, "/var/tmp/fieldkit-staging")

    driver = connect()
    try:
        yield Subject(
            "ssh-real-rauc",
            driver,
            connect,
            "rauc",
            payload,
            refused,
            rig.booted_slot,
            lambda slot: rig.env().good(slot),
            lambda: len(rig.boots()),
        )
    finally:
        driver.close()
        rig.power_off()


# An MCU board under MCUboot, as fieldkit's board table knows it (AMP-WB7 r2, component "app"), at OLD.
SMP_BOARD = SimulatedModel(
    "Ampero", "AMP-WB7", ("r2",), "serial-smp", (SimulatedComponent("app", "mcu-app", "mcumgr-smp"),),
    installed_version=OLD, security_version_floor=2,
)  # fmt: skip


def _smp_payload(path: Path, model: str, version: str, size: int) -> PayloadSource:
    body = ImageHeader("Ampero", model, "app", version, 4).to_bytes() + os.urandom(size)
    image = mcuboot_image(body, version)
    path.write_bytes(image)
    return PayloadSource.whole_file(path, hashlib.sha256(image).hexdigest(), version)


def _smp(tmp_path: Path) -> Iterator[Subject]:
    state = tmp_path / "board"
    SimulatedCharger.create(state, SMP_BOARD, "WB7-CONTRACT")
    payload = _smp_payload(tmp_path / "new.bin", "AMP-WB7", NEW, 700_000)
    refused = _smp_payload(tmp_path / "other-model.bin", "VQ-DC150", NEW, 50_000)
    with serving(state, "socket") as line:

        def connect() -> SmpDriver:
            return SmpDriver(f"smp+{line.url}", open_byte_stream, health_stable_s=0.3, poll_s=0.05, reset_timeout_s=10)

        driver = connect()
        try:
            yield Subject(
                "smp-simulator", driver, connect, "mcumgr-smp", payload, refused, *_device_slots(state, "app"), "app"
            )
        finally:
            driver.close()


# What each subject's driver declares, known before it runs: each case is collected only for the subjects it
# applies to (a charger with no way back is not asked to roll back), so none is skipped.
DECLARED: dict[str, Capabilities] = {
    "memory-linux": KINDS["linux"],
    "memory-mcu": KINDS["mcu"],
    "memory-dfu": KINDS["dfu"],
    "ssh-simulator": LinuxSshDriver.capabilities,
    "ssh-real-rauc": LinuxSshDriver.capabilities,
    "smp-simulator": SmpDriver("smp+socket://127.0.0.1:1", open_byte_stream).capabilities,
}


def subjects(
    *,
    trial_boot: bool | None = None,
    revert: bool | None = None,
    read_back: bool | None = None,
    way_back: Revert | None = None,
) -> list[str]:
    """The subjects whose declared capabilities match."""
    return [
        name
        for name, declared in DECLARED.items()
        if (trial_boot is None or declared.trial_boot == trial_boot)
        and (revert is None or (declared.revert != Revert.NONE) == revert)
        and (way_back is None or declared.revert == way_back)
        and (read_back is None or (declared.verification != Verification.STREAMED_HASH) == read_back)
    ]


def only(names: list[str]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("subject", names, indirect=True)


@pytest.fixture(params=list(DECLARED))
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    name: str = request.param
    if name.startswith("memory-"):
        yield from _memory(tmp_path, name.removeprefix("memory-"))
    elif name == "ssh-simulator":
        yield from _simulator(tmp_path)
    elif name == "smp-simulator":
        yield from _smp(tmp_path)
    else:
        yield from _rig(tmp_path)


async def _install(subject: Subject, payload: PayloadSource | None = None) -> None:
    driver, payload = subject.driver, payload or subject.payload
    await driver.transfer(subject.component, payload, None)
    assert await driver.verify(subject.component, payload), "verify says what it checked, for the audit trail"
    await driver.activate(subject.component, payload.sha256, subject.install_method)


def test_identity_names_the_charger_and_leaves_unknowns_unknown(subject: Subject) -> None:
    identity = asyncio.run(subject.driver.identify())
    assert identity.serial, "every charger names its serial"
    assert identity.components[subject.component].version == OLD
    assert identity.components[subject.component].pending_slot is None
    assert subject.install_method in subject.capabilities.install_methods
    for fact, value in (
        ("transaction", identity.transaction_active),
        ("security_version_floor", identity.security_version_floor),
    ):
        assert (value is None) == (fact in identity.unknown_safety_facts), "an unknown fact is reported as unknown"
    assert subject.capabilities.link_rate_bytes_per_s > 0
    expected_sources = {
        # A stock system: identity read from standard files (the generic RAUC profile), not reported by a program.
        "ssh-real-rauc": {"vendor", "model", "hardware_revision", "serial", "version"},
        "memory-dfu": {"vendor", "model"},  # from the USB descriptor, as a DFU bootloader gives them
    }.get(subject.name, set())
    assert {f for f, source in identity.fact_sources.items() if source == FactSource.DESCRIPTOR} == expected_sources


def test_a_full_update_commits_the_new_version(subject: Subject) -> None:
    async def scenario() -> None:
        driver = subject.driver
        await _install(subject)
        assert await driver.installed(subject.component, NEW) in (True, None)
        before = (await driver.identify()).boot_id
        assert await driver.reboot() is None, "no hand-over: the charger answers where it did"
        after = await driver.identify()
        # A charger with no boot id (an SMP board) is proven rebooted by the version it runs, just below.
        assert before is None or after.boot_id != before, "reboot() returned before the charger rebooted"
        assert after.components[subject.component].version == NEW
        if subject.capabilities.health_check:
            report = await driver.health({subject.component: NEW}, baseline_meter_wh=0)
            assert report.healthy, report.detail
        if subject.capabilities.trial_boot:
            await driver.commit(subject.methods, {subject.component: NEW})
            await driver.commit(subject.methods, {subject.component: NEW})  # a resumed job may commit twice
        final = (await driver.identify()).components[subject.component]
        assert (final.version, final.pending_slot) == (NEW, None)

    old = subject.booted()
    asyncio.run(scenario())
    assert subject.booted() != old and subject.good(subject.booted())


@only(subjects(way_back=Revert.SLOT_FALLBACK))
def test_an_install_abandoned_before_it_boots_keeps_the_running_slot_good_and_primary(subject: Subject) -> None:
    async def scenario() -> None:
        await _install(subject)
        pending = (await subject.driver.identify()).components[subject.component]
        assert pending.pending_slot is not None and pending.pending_version in (NEW, None)
        note = await subject.driver.rollback(subject.methods, {subject.component: OLD})
        assert "abandoned" in note and "before it booted" in note
        after = (await subject.driver.identify()).components[subject.component]
        assert after.pending_slot is None and after.version == OLD

    booted, boots = subject.booted(), subject.boots()
    asyncio.run(scenario())
    assert subject.booted() == booted and subject.good(booted), "the running slot was marked bad"
    assert subject.boots() == boots, "abandoning an install that never booted needs no reboot"


@only(subjects(way_back=Revert.AFTER_TRIAL))
def test_an_install_that_cannot_be_withdrawn_boots_once_then_the_good_image_again(subject: Subject) -> None:
    async def scenario() -> None:
        await _install(subject)
        note = await subject.driver.rollback(subject.methods, {subject.component: OLD})
        assert "cannot be withdrawn" in note and "rebooted into the committed image" in note
        after = (await subject.driver.identify()).components[subject.component]
        assert after.pending_slot is None and after.version == OLD

    booted = subject.booted()
    asyncio.run(scenario())
    assert subject.booted() == booted and subject.good(booted), "the good image was not booted again"


@only(subjects(revert=False))
def test_a_charger_without_a_way_back_refuses_to_pretend_one(subject: Subject) -> None:
    asyncio.run(_install(subject))
    with pytest.raises(DeviceRefusedError, match="no previous image"):
        asyncio.run(subject.driver.rollback(subject.methods, {subject.component: OLD}))


def test_rollback_with_nothing_pending_refuses_and_changes_nothing(subject: Subject) -> None:
    booted, boots = subject.booted(), subject.boots()
    with pytest.raises(DeviceRefusedError, match="nothing to roll back"):
        asyncio.run(subject.driver.rollback(subject.methods, None))
    assert subject.booted() == booted and subject.good(booted) and subject.boots() == boots


def test_an_image_the_charger_refuses_is_a_refusal_that_changes_nothing(subject: Subject) -> None:
    booted = subject.booted()
    with pytest.raises(DeviceRefusedError):
        asyncio.run(_install(subject, subject.refused))
    after = asyncio.run(subject.driver.identify()).components[subject.component]
    assert after.pending_slot is None and after.version == OLD
    assert subject.booted() == booted and subject.good(booted)


@only(subjects(trial_boot=True))
def test_commit_refuses_while_the_new_image_is_not_running(subject: Subject) -> None:
    asyncio.run(_install(subject))
    with pytest.raises(DeviceRefusedError, match=r"not committing|nothing to commit"):
        asyncio.run(subject.driver.commit(subject.methods, {subject.component: NEW}))


@only(subjects(trial_boot=True, revert=True))
def test_a_running_new_image_is_rolled_back_to_the_good_slot(subject: Subject) -> None:
    async def scenario() -> None:
        await _install(subject)
        await subject.driver.reboot()
        note = await subject.driver.rollback(subject.methods, {subject.component: OLD})
        assert "marked bad" in note or "rebooted into the committed image" in note
        assert (await subject.driver.identify()).components[subject.component].version == OLD

    old = subject.booted()
    asyncio.run(scenario())
    assert subject.booted() == old and subject.good(old)


class _Interrupted(Exception):
    pass


# Not the rig: its RAUC bundle compresses to less than one progress report; ssh-simulator runs the same driver.
@only([name for name in DECLARED if name != "ssh-real-rauc"])
def test_an_interrupted_transfer_continues_as_the_driver_declares(subject: Subject) -> None:
    payload = subject.payload

    def cut(position: int) -> None:
        if 0 < position < payload.size_bytes:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        asyncio.run(subject.driver.transfer(subject.component, payload, cut))
    subject.driver.close()
    again = subject.reopen()  # a laptop restarted: nothing of the first run in memory
    try:
        sent = asyncio.run(again.transfer(subject.component, payload, None))
        if subject.capabilities.resume == Resume.RESTART:
            assert sent == payload.size_bytes
        else:
            assert 0 < sent < payload.size_bytes, f"{sent} of {payload.size_bytes} bytes sent again"
        assert asyncio.run(again.verify(subject.component, payload))
    finally:
        again.close()


# Not the rig: its staging directory lies inside the rig's own root; ssh-simulator runs the same driver.
@only([name for name in subjects(read_back=True) if name != "ssh-real-rauc"])
def test_verification_refuses_a_damaged_copy_where_the_driver_reads_back(subject: Subject) -> None:
    asyncio.run(subject.driver.transfer(subject.component, subject.payload, None))
    driver = subject.driver
    if isinstance(driver, MemoryDriver | SmpDriver):
        state = driver.state_dir if isinstance(driver, MemoryDriver) else subject.payload.path.parent / "board"
        charger = SimulatedCharger(state)
        copy = charger.slot_path(subject.component, charger.inactive_slot(subject.component))
    else:
        assert isinstance(driver, LinuxSshDriver)
        copy = Path(driver.staged_path(subject.payload.sha256))
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF  # one byte damaged after the transfer
    copy.write_bytes(bytes(data))
    with pytest.raises(DeviceRefusedError, match="does not match"):
        asyncio.run(subject.driver.verify(subject.component, subject.payload))
