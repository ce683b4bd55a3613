"""The linux_ssh driver updating a simulated charger through a real OpenSSH sshd."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldkit.drivers.base import PayloadSource
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.errors import DeviceRefusedError
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.shell import write_shims
from fieldkit.transports.ssh import SshSession, SshTarget
from tests.support.sshd import Sshd, sshd_available

pytestmark = pytest.mark.skipif(not sshd_available(), reason="needs OpenSSH sshd (apt-get install openssh-server)")


@pytest.fixture
def charger_over_sshd(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Sshd, Path]]:
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model_named("VQ-AC22"), "SN-SSH")
    shims = write_shims(tmp_path / "shims", sys.executable)
    faults = getattr(request, "param", "")
    server = Sshd(
        tmp_path / "sshd",
        extra_config=(f"SetEnv PATH={shims}:/usr/bin:/bin FIELDKIT_SIM_STATE={state} FIELDKIT_SIM_FAULTS={faults}\n"),
    )
    server.start()
    yield server, state
    server.stop()


def _driver(server: Sshd, tmp_path: Path) -> LinuxSshDriver:
    target = SshTarget(server.user, "127.0.0.1", server.port)
    return LinuxSshDriver(
        lambda: SshSession(target, tmp_path / "known_hosts", key_file=server.client_key, accept_new_host_key=True),
        staging_dir=str(tmp_path / "staging"),
        health_stable_s=0.3,
        health_timeout_s=5,
        poll_s=0.1,
        reboot_timeout_s=10,
    )


def _image(tmp_path: Path, version: str = "2.4.0", security_version: int = 4) -> tuple[Path, str]:
    header = ImageHeader("Voltiq", "VQ-AC22", "rootfs", version, security_version).to_bytes()
    path = tmp_path / f"rootfs-{version}.img"
    path.write_bytes(header + os.urandom(600_000))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_update_over_openssh(charger_over_sshd: tuple[Sshd, Path], tmp_path: Path) -> None:
    server, state = charger_over_sshd
    driver = _driver(server, tmp_path)
    image, sha = _image(tmp_path)

    async def update() -> None:
        identity = await driver.identify()
        assert (identity.model, identity.serial, identity.components["rootfs"].version) == (
            "VQ-AC22",
            "SN-SSH",
            "2.3.0",
        )
        assert await driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None) == image.stat().st_size
        await driver.verify("rootfs", sha)
        await driver.activate("rootfs", sha)
        await driver.reboot()
        report = await driver.health({"rootfs": "2.4.0"}, baseline_meter_wh=0)
        assert report.healthy, report.detail
        await driver.commit()

    asyncio.run(update())
    driver.close()
    status = SimulatedCharger(state).status()["components"]["rootfs"]
    assert (status["running_version"], status["state"], status["committed_slot"]) == ("2.4.0", "committed", "B")


def test_transfer_resumes_from_the_verified_prefix_only(charger_over_sshd: tuple[Sshd, Path], tmp_path: Path) -> None:
    server, _ = charger_over_sshd
    driver = _driver(server, tmp_path)
    image, sha = _image(tmp_path)
    staged = Path(driver.staged_path(sha))
    staged.parent.mkdir(parents=True)
    staged.write_bytes(image.read_bytes()[:250_000])  # what an interrupted transfer left
    assert (
        asyncio.run(driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None))
        == image.stat().st_size - 250_000
    )
    assert (
        asyncio.run(driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None)) == 0
    )  # complete: nothing re-sent
    staged.write_bytes(b"X" + image.read_bytes()[1:250_000])  # a prefix that does not hash right
    assert asyncio.run(driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None)) == image.stat().st_size
    asyncio.run(driver.verify("rootfs", sha))
    driver.close()


@pytest.mark.parametrize("charger_over_sshd", ["never-available"], indirect=True)
def test_an_image_that_never_becomes_available_is_rolled_back(
    charger_over_sshd: tuple[Sshd, Path], tmp_path: Path
) -> None:
    server, state = charger_over_sshd
    driver = _driver(server, tmp_path)
    image, sha = _image(tmp_path)

    async def update() -> None:
        await driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None)
        await driver.activate("rootfs", sha)
        await driver.reboot()
        report = await driver.health({"rootfs": "2.4.0"}, baseline_meter_wh=0)
        assert not report.healthy and "Unavailable" in report.detail
        await driver.rollback()
        assert (await driver.identify()).components["rootfs"].version == "2.3.0"

    asyncio.run(update())
    driver.close()
    assert SimulatedCharger(state).status()["components"]["rootfs"]["state"] == "committed"


def test_the_charger_refuses_a_downgrade(charger_over_sshd: tuple[Sshd, Path], tmp_path: Path) -> None:
    server, _ = charger_over_sshd
    driver = _driver(server, tmp_path)
    image, sha = _image(tmp_path, "1.0.0", security_version=1)
    asyncio.run(driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None))
    with pytest.raises(DeviceRefusedError, match=r"anti-rollback|below the floor"):
        asyncio.run(driver.activate("rootfs", sha))
    driver.close()
