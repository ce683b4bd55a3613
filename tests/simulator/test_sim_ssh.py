"""`fieldkit sim ssh`: the simulator's own SSH endpoint, driven by the real driver."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.errors import LinkLostError, TransportError
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.transports.remote_shell import CommandResult
from fieldkit.transports.ssh import SshSession, SshTarget

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
COMMAND_ROUNDS = 250
COMMAND_CALLERS = 4


class SimProcess:
    def __init__(self, state: Path, *faults: str) -> None:
        self.state = state
        self.process = subprocess.Popen(
            [FIELDKIT, "sim", "ssh", "--state", str(state), "--port", "0", *(f"--fault={f}" for f in faults)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().strip()
        assert self.address.startswith("ssh://"), self.process.stderr.read() if self.process.stderr else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    process = SimProcess(tmp_path / "charger")
    yield process
    process.stop()


def _driver(sim: SimProcess, tmp_path: Path) -> LinuxSshDriver:
    target = SshTarget.parse(sim.address)
    return LinuxSshDriver(
        lambda: SshSession(
            target, tmp_path / "known_hosts", key_file=sim.state / "client_key", accept_new_host_key=True
        ),
        staging_dir=str(tmp_path / "staging"),
        health_stable_s=0.2,
        health_timeout_s=5,
        poll_s=0.1,
        reboot_timeout_s=10,
    )


def _payload(tmp_path: Path, size: int = 800_000) -> PayloadSource:
    header = ImageHeader("Voltiq", "VQ-AC22", "rootfs", "2.4.0", 4).to_bytes()
    path = tmp_path / "rootfs.img"
    path.write_bytes(header + os.urandom(size - len(header)))
    return PayloadSource.whole_file(path, hashlib.sha256(path.read_bytes()).hexdigest())


def test_full_update_through_the_simulators_own_ssh(sim: SimProcess, tmp_path: Path) -> None:
    driver = _driver(sim, tmp_path)
    payload = _payload(tmp_path)

    async def update() -> None:
        assert (await driver.identify()).components["rootfs"].version == "2.3.0"
        await driver.transfer("rootfs", payload, None)
        await driver.verify("rootfs", payload)
        await driver.activate("rootfs", payload.sha256, "rauc")
        await driver.reboot()
        assert (await driver.health({"rootfs": "2.4.0"}, 0)).healthy
        await driver.commit({"rootfs": "rauc"}, {"rootfs": "2.4.0"})

    asyncio.run(update())
    driver.close()
    assert SimulatedCharger(sim.state).status()["components"]["rootfs"]["state"] == "committed"


def test_a_dropped_link_resumes_keeping_what_landed(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path / "charger", "link-drop:byte=300000")
    try:
        driver = _driver(sim, tmp_path)
        payload = _payload(tmp_path)
        with pytest.raises(LinkLostError):
            asyncio.run(driver.transfer("rootfs", payload, None))
        driver.close()
        staged = Path(driver.staged_path(payload.sha256))
        landed = staged.read_bytes()
        assert landed == payload.path.read_bytes()[: len(landed)], "what landed must be a clean prefix"
        sent = asyncio.run(driver.transfer("rootfs", payload, None))
        assert 0 < sent < payload.size_bytes, f"{len(landed)} bytes had landed, {sent} were sent again"
        asyncio.run(driver.verify("rootfs", payload))
        driver.close()
    finally:
        sim.stop()


def test_a_power_cut_during_install_takes_the_charger_down_and_it_boots_the_old_image(tmp_path: Path) -> None:
    sim = SimProcess(tmp_path / "charger", "power-cut:byte=400000")
    try:
        driver = _driver(sim, tmp_path)
        payload = _payload(tmp_path)
        asyncio.run(driver.transfer("rootfs", payload, None))
        with pytest.raises(TransportError):
            asyncio.run(driver.activate("rootfs", payload.sha256, "rauc"))
        sim.process.wait(timeout=10)  # the endpoint went down with the power
        driver.close()
    finally:
        sim.stop()
    restarted = SimProcess(tmp_path / "charger")
    try:
        driver = _driver(restarted, tmp_path)
        asyncio.run(driver.reboot())
        identity = asyncio.run(driver.identify())
        assert (identity.components["rootfs"].version, identity.components["rootfs"].pending_slot) == ("2.3.0", None)
        driver.close()
    finally:
        restarted.stop()


def test_bad_fault_spec_is_refused_before_serving(tmp_path: Path) -> None:
    result = subprocess.run(
        [FIELDKIT, "sim", "ssh", "--state", str(tmp_path / "c"), "--fault", "explode"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "not a fault spec" in result.stderr


def test_every_quick_command_is_answered_after_its_exec_request(sim: SimProcess, tmp_path: Path) -> None:
    """A forked command ends in milliseconds; its channel must not close before the exec request is answered.

    When it did, the client saw "Channel closed." instead of the answer, about one command in a few
    thousand; several callers on one link at once make the overlap far more likely.
    """
    session = SshSession(
        SshTarget.parse(sim.address),
        tmp_path / "known_hosts",
        key_file=sim.state / "client_key",
        accept_new_host_key=True,
    )
    session.connect()

    def ask(rounds: int) -> list[CommandResult]:
        return [session.run("charger-identity --json", timeout_s=30) for _ in range(rounds)]

    try:
        with ThreadPoolExecutor(COMMAND_CALLERS) as pool:
            answers = [a for batch in pool.map(ask, [COMMAND_ROUNDS] * COMMAND_CALLERS) for a in batch]
    finally:
        session.close()
    assert len(answers) == COMMAND_ROUNDS * COMMAND_CALLERS
    assert all(answer.exit_status == 0 and b"serial" in answer.stdout for answer in answers)
