"""One RAUC contract, two chargers: the simulator and a real RAUC system must answer the driver alike.

The simulator's RAUC once behaved as the driver expected rather than as RAUC
does, and tests against it passed while a real charger's good slot would
have been marked bad. So every case here runs against the simulator (over
real sshd, fieldkit-helpers profile) and against the rig (real RAUC 1.8,
U-Boot environment, generic RAUC profile); the simulator may not pass what
the real one fails.
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

from fieldkit.domain import PayloadSource
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.errors import DeviceRefusedError
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.shell import write_shims
from fieldkit.transports.ssh import SshSession, SshTarget
from tests.support.raucbundle import build_rauc_bundle, make_signer
from tests.support.rig import COMPATIBLE, LinuxRig, rig_image, rig_missing
from tests.support.sshd import Sshd, sshd_available

OLD, NEW = "2.3.0", "2.4.0"


@dataclass
class Charger:
    driver: LinuxSshDriver
    payload: PayloadSource  # the NEW image, in the form this charger's RAUC installs
    booted: Callable[[], str]  # the slot the charger runs, from its own state
    good: Callable[[str], bool]  # would its bootloader still boot this slot?
    boots: Callable[[], int]


def _driver(user: str, port: int, key: Path, tmp_path: Path, staging: str) -> LinuxSshDriver:
    target = SshTarget(user, "127.0.0.1", port)
    return LinuxSshDriver(
        lambda: SshSession(target, tmp_path / "known_hosts", key_file=key, accept_new_host_key=True),
        staging_dir=staging,
        health_stable_s=0.3,
        health_timeout_s=10,
        poll_s=0.05,
        reboot_timeout_s=30,
    )


def _simulator(tmp_path: Path) -> Iterator[Charger]:
    if not sshd_available():
        pytest.skip("needs OpenSSH sshd")
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model_named("VQ-AC22"), "SN-CONTRACT")
    shims = write_shims(tmp_path / "shims", sys.executable)
    server = Sshd(tmp_path / "sshd", extra_config=f"SetEnv PATH={shims}:/usr/bin:/bin FIELDKIT_SIM_STATE={state}\n")
    server.start()
    image = tmp_path / "new.img"
    image.write_bytes(ImageHeader("Voltiq", "VQ-AC22", "rootfs", NEW, 4).to_bytes() + os.urandom(300_000))
    payload = PayloadSource.whole_file(image, hashlib.sha256(image.read_bytes()).hexdigest())

    def component() -> dict[str, object]:
        return SimulatedCharger(state).status()["components"]["rootfs"]  # type: ignore[no-any-return]

    def good(slot: str) -> bool:
        charger = SimulatedCharger(state)
        rootfs = charger.components["rootfs"]
        return rootfs.slots.get(slot) is not None and slot in (rootfs.committed, rootfs.pending)

    driver = _driver(server.user, server.port, server.client_key, tmp_path, str(tmp_path / "staging"))
    try:
        yield Charger(
            driver,
            payload,
            lambda: str(component()["active_slot"]),
            good,
            lambda: int(SimulatedCharger(state).status()["boot_count"]),
        )
    finally:
        driver.close()
        server.stop()


def _rig(tmp_path: Path) -> Iterator[Charger]:
    if rig_missing() is not None:
        pytest.skip(rig_missing() or "")
    signer = make_signer(tmp_path / "keys", "Voltiq")
    rig = LinuxRig(tmp_path / "rig", "sshd").prepare(OLD, keyring_pem=signer.ca_pem)
    rig.start()
    raucb = build_rauc_bundle(tmp_path / "bundle", rig_image(NEW), NEW, COMPATIBLE, signer)
    payload = PayloadSource.whole_file(raucb, hashlib.sha256(raucb.read_bytes()).hexdigest())
    driver = _driver(rig.user, rig.port, rig.client_key, tmp_path, "/var/tmp/fieldkit-staging")
    try:
        yield Charger(driver, payload, rig.booted_slot, lambda slot: rig.env().good(slot), lambda: len(rig.boots()))
    finally:
        driver.close()
        rig.power_off()


@pytest.fixture(params=["simulator", "real-rauc"])
def charger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Charger]:
    yield from (_simulator(tmp_path) if request.param == "simulator" else _rig(tmp_path))


async def _install(charger: Charger) -> None:
    driver, payload = charger.driver, charger.payload
    await driver.transfer("rootfs", payload, None)
    await driver.verify("rootfs", payload.sha256)
    await driver.activate("rootfs", payload.sha256, "rauc")


def test_an_install_abandoned_before_it_boots_keeps_the_running_slot_good_and_primary(charger: Charger) -> None:
    async def scenario() -> None:
        await _install(charger)
        pending = (await charger.driver.identify()).components["rootfs"]
        assert pending.pending_slot is not None and pending.pending_version in (NEW, None)
        note = await charger.driver.rollback({"rootfs": "rauc"}, {"rootfs": OLD})
        assert "abandoned before it booted" in note
        after = (await charger.driver.identify()).components["rootfs"]
        assert after.pending_slot is None and after.version == OLD

    booted, boots = charger.booted(), charger.boots()
    asyncio.run(scenario())
    assert charger.booted() == booted and charger.good(booted), "the running slot was marked bad"
    assert charger.boots() == boots, "abandoning an install that never booted needs no reboot"


def test_rollback_with_nothing_pending_refuses_and_changes_nothing(charger: Charger) -> None:
    booted, boots = charger.booted(), charger.boots()
    with pytest.raises(DeviceRefusedError, match="nothing to roll back"):
        asyncio.run(charger.driver.rollback({"rootfs": "rauc"}, None))
    assert charger.booted() == booted and charger.good(booted) and charger.boots() == boots


def test_commit_refuses_while_the_new_image_is_not_running(charger: Charger) -> None:
    asyncio.run(_install(charger))
    with pytest.raises(DeviceRefusedError, match="not committing"):
        asyncio.run(charger.driver.commit({"rootfs": "rauc"}, {"rootfs": NEW}))


def test_reboot_returns_once_the_new_system_runs_and_commit_makes_it_good(charger: Charger) -> None:
    async def scenario() -> None:
        await _install(charger)
        before = (await charger.driver.identify()).boot_id
        await charger.driver.reboot()
        after = await charger.driver.identify()
        assert after.boot_id is not None and after.boot_id != before, "reboot() returned before the charger rebooted"
        assert after.components["rootfs"].version == NEW
        await charger.driver.commit({"rootfs": "rauc"}, {"rootfs": NEW})
        await charger.driver.commit({"rootfs": "rauc"}, {"rootfs": NEW})  # a resumed job may commit twice

    old = charger.booted()
    asyncio.run(scenario())
    assert charger.booted() != old and charger.good(charger.booted())


def test_a_running_new_image_is_rolled_back_to_the_good_slot(charger: Charger) -> None:
    async def scenario() -> None:
        await _install(charger)
        await charger.driver.reboot()
        note = await charger.driver.rollback({"rootfs": "rauc"}, {"rootfs": OLD})
        assert "marked bad" in note
        assert (await charger.driver.identify()).components["rootfs"].version == OLD

    old = charger.booted()
    asyncio.run(scenario())
    assert charger.booted() == old and charger.good(old)
