"""The linux_ssh driver updating simulated chargers through a real OpenSSH sshd, one per updater."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.errors import DeviceRefusedError
from fieldkit.simulator.catalog import SimulatedModel, model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.shell import write_shims
from tests.support.drivers import loopback_driver
from tests.support.sshd import Sshd, sshd_available

pytestmark = pytest.mark.skipif(not sshd_available(), reason="needs OpenSSH sshd (apt-get install openssh-server)")

# One model per updater: RAUC, SWUpdate, Mender, and RAUC + a vendor script on one charger.
MODELS_BY_UPDATER = {"rauc": "VQ-AC22", "swupdate": "KS-DC60", "mender": "NV-AC7", "rauc+script": "VQ-DC150"}


def _sshd(tmp_path: Path, model: SimulatedModel, faults: str = "") -> tuple[Sshd, Path]:
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model, "SN-SSH")
    shims = write_shims(tmp_path / "shims", sys.executable)
    server = Sshd(
        tmp_path / "sshd",
        extra_config=(f"SetEnv PATH={shims}:/usr/bin:/bin FIELDKIT_SIM_STATE={state} FIELDKIT_SIM_FAULTS={faults}\n"),
    )
    server.start()
    return server, state


@pytest.fixture
def charger_over_sshd(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Sshd, Path]]:
    server, state = _sshd(tmp_path, model_named("VQ-AC22"), getattr(request, "param", ""))
    yield server, state
    server.stop()


def _driver(server: Sshd, tmp_path: Path) -> LinuxSshDriver:
    return loopback_driver(server.user, server.port, server.client_key, tmp_path)


def _image(
    tmp_path: Path, version: str = "2.4.0", security_version: int = 4, model: str = "VQ-AC22", component: str = "rootfs"
) -> tuple[Path, str]:
    vendor = model_named(model).vendor
    header = ImageHeader(vendor, model, component, version, security_version).to_bytes()
    path = tmp_path / f"{component}-{version}.img"
    path.write_bytes(header + os.urandom(600_000))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("updater", list(MODELS_BY_UPDATER))
def test_full_update_over_openssh_through_each_updater(tmp_path: Path, updater: str) -> None:
    model = model_named(MODELS_BY_UPDATER[updater])
    server, state = _sshd(tmp_path, model)
    driver = _driver(server, tmp_path)
    methods = {c.name: c.install_method for c in model.components}
    images = {c.name: _image(tmp_path, "9.0.0", 9, model.model, c.name) for c in model.components}

    async def update() -> None:
        identity = await driver.identify()
        assert (identity.model, identity.serial) == (model.model, "SN-SSH")
        assert {n: c.install_method for n, c in identity.components.items()} == methods
        for name, (image, sha) in images.items():
            assert await driver.transfer(name, PayloadSource.whole_file(image, sha), None) == image.stat().st_size
            await driver.verify(name, PayloadSource.whole_file(image, sha))
            await driver.activate(name, sha, methods[name])
        await driver.reboot()
        report = await driver.health(dict.fromkeys(methods, "9.0.0"), baseline_meter_wh=0)
        assert report.healthy, report.detail
        await driver.commit(methods, dict.fromkeys(methods, "9.0.0"))
        await driver.commit(methods, dict.fromkeys(methods, "9.0.0"))  # a resumed job may commit twice: harmless

    try:
        asyncio.run(update())
    finally:
        driver.close()
        server.stop()
    for name, status in SimulatedCharger(state).status()["components"].items():
        assert (status["running_version"], status["state"]) == ("9.0.0", "committed"), name


@pytest.mark.parametrize("updater", ["swupdate", "mender", "rauc+script"])
def test_each_updater_rolls_back_an_image_that_never_becomes_available(tmp_path: Path, updater: str) -> None:
    model = model_named(MODELS_BY_UPDATER[updater])
    server, state = _sshd(tmp_path, model, "never-available")
    driver = _driver(server, tmp_path)
    methods = {c.name: c.install_method for c in model.components}

    async def update() -> None:
        for component in model.components:
            image, sha = _image(tmp_path, "9.0.0", 9, model.model, component.name)
            await driver.transfer(component.name, PayloadSource.whole_file(image, sha), None)
            await driver.activate(component.name, sha, component.install_method)
        await driver.reboot()
        assert not (await driver.health(dict.fromkeys(methods, "9.0.0"), baseline_meter_wh=0)).healthy
        await driver.rollback(methods, dict.fromkeys(methods, model.installed_version))
        identity = await driver.identify()
        assert {n: c.version for n, c in identity.components.items()} == dict.fromkeys(methods, model.installed_version)

    try:
        asyncio.run(update())
    finally:
        driver.close()
        server.stop()
    assert all(c["state"] == "committed" for c in SimulatedCharger(state).status()["components"].values())


def test_an_image_goes_only_to_the_updater_that_owns_its_component(tmp_path: Path) -> None:
    model = model_named("NV-AC7")  # Mender owns rootfs here
    server, _ = _sshd(tmp_path, model)
    driver = _driver(server, tmp_path)
    image, sha = _image(tmp_path, "9.0.0", 9, model.model)
    try:
        asyncio.run(driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None))
        with pytest.raises(DeviceRefusedError, match="managed by mender, not rauc"):
            asyncio.run(driver.activate("rootfs", sha, "rauc"))
        with pytest.raises(DeviceRefusedError, match="cannot install with 'dfu'"):
            asyncio.run(driver.activate("rootfs", sha, "dfu"))
    finally:
        driver.close()
        server.stop()


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
    asyncio.run(driver.verify("rootfs", PayloadSource.whole_file(image, sha)))
    driver.close()


def test_verify_refuses_a_staged_image_that_does_not_hash_right(
    charger_over_sshd: tuple[Sshd, Path], tmp_path: Path
) -> None:
    server, _ = charger_over_sshd
    driver = _driver(server, tmp_path)
    image, sha = _image(tmp_path)
    asyncio.run(driver.transfer("rootfs", PayloadSource.whole_file(image, sha), None))
    asyncio.run(driver.verify("rootfs", PayloadSource.whole_file(image, sha)))
    staged = Path(driver.staged_path(sha))
    data = staged.read_bytes()
    staged.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one byte damaged after the transfer
    with pytest.raises(DeviceRefusedError, match="does not match its SHA-256"):
        asyncio.run(driver.verify("rootfs", PayloadSource.whole_file(image, sha)))
    staged.unlink()
    with pytest.raises(DeviceRefusedError, match="`sha256` failed"):
        asyncio.run(driver.verify("rootfs", PayloadSource.whole_file(image, sha)))
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
        await driver.activate("rootfs", sha, "rauc")
        await driver.reboot()
        report = await driver.health({"rootfs": "2.4.0"}, baseline_meter_wh=0)
        assert not report.healthy and "Unavailable" in report.detail
        await driver.rollback({"rootfs": "rauc"}, {"rootfs": "2.3.0"})
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
        asyncio.run(driver.activate("rootfs", sha, "rauc"))
    driver.close()
