"""The simulated charger behaves like A/B hardware: verify before boot, fall back, never brick."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from fieldkit.cli.main import main
from fieldkit.errors import UsageError
from fieldkit.simulator.bootloader import MAX_BOOT_ATTEMPTS
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import DeviceError, SimulatedCharger
from fieldkit.simulator.faults import FaultPlan, Hang, PowerCut
from fieldkit.simulator.image import ImageHeader

AC22 = model_named("VQ-AC22")


def image(version: str = "2.4.0", security_version: int = 4, model: str = "VQ-AC22", size: int = 200_000) -> bytes:
    header = ImageHeader("Voltiq", model, "rootfs", version, security_version).to_bytes()
    return header + os.urandom(size - len(header))


def install(charger: SimulatedCharger, data: bytes, chunk: int = 32_768) -> None:
    charger.begin_install("rootfs")
    for offset in range(0, len(data), chunk):
        charger.write_slot("rootfs", offset, data[offset : offset + chunk])
    charger.finish_install("rootfs", hashlib.sha256(data).hexdigest())


@pytest.fixture
def charger(tmp_path: Path) -> SimulatedCharger:
    return SimulatedCharger.create(tmp_path / "sim", AC22, "SN-1")


def running(charger: SimulatedCharger) -> str:
    return str(charger.status()["components"]["rootfs"]["running_version"])


def test_factory_state(charger: SimulatedCharger) -> None:
    status = charger.status()
    assert status["components"]["rootfs"] == {
        "running_version": "2.3.0",
        "active_slot": "A",
        "committed_slot": "A",
        "state": "committed",
        "pending_slot": None,
        "boot_attempts": 0,
        "install_method": "rauc",
    }
    assert [c["status"] for c in status["connectors"]] == ["Available", "Available"]
    assert status["security_version_floor"] == AC22.security_version_floor


def test_install_boot_commit_raises_the_floor(charger: SimulatedCharger) -> None:
    install(charger, image("2.4.0", 4))
    assert running(charger) == "2.3.0"  # nothing changes until reboot
    charger.power_on()
    assert running(charger) == "2.4.0"
    assert charger.status()["components"]["rootfs"]["state"] == "pending"
    charger.mark_good("rootfs")
    charger.power_on()
    assert (running(charger), charger.security_version_floor) == ("2.4.0", 4)
    assert charger.status()["components"]["rootfs"]["committed_slot"] == "B"


def test_an_uncommitted_image_falls_back_after_its_boot_attempts(charger: SimulatedCharger) -> None:
    install(charger, image())
    for _ in range(MAX_BOOT_ATTEMPTS):
        assert charger.power_on().result == "ok"
        assert running(charger) == "2.4.0"
    record = charger.power_on()
    assert record.result == "fallback" and "failed 3 boots" in record.detail
    assert running(charger) == "2.3.0"


def test_mark_bad_returns_to_the_committed_image(charger: SimulatedCharger) -> None:
    install(charger, image())
    charger.power_on()
    charger.mark_bad("rootfs")
    charger.power_on()
    assert running(charger) == "2.3.0"


def test_an_image_corrupted_after_install_never_boots(charger: SimulatedCharger) -> None:
    install(charger, image())
    slot = charger.slot_path("rootfs", "B")
    data = bytearray(slot.read_bytes())
    data[5000] ^= 1
    slot.write_bytes(bytes(data))
    record = charger.power_on()
    assert (record.result, running(charger)) == ("fallback", "2.3.0")
    assert "verification" in record.detail


@pytest.mark.parametrize(
    ("data", "code"),
    [(image("1.0.0", 1), "anti-rollback"), (image(model="VQ-DC150"), "wrong-image"), (b"garbage" * 100, "bad-image")],
)
def test_the_charger_refuses_what_real_hardware_would(charger: SimulatedCharger, data: bytes, code: str) -> None:
    with pytest.raises(DeviceError) as caught:
        install(charger, data)
    assert caught.value.code == code
    charger.power_on()
    assert running(charger) == "2.3.0"


def test_a_wrong_hash_is_refused(charger: SimulatedCharger) -> None:
    charger.begin_install("rootfs")
    data = image()
    charger.write_slot("rootfs", 0, data)
    with pytest.raises(DeviceError) as caught:
        charger.finish_install("rootfs", "0" * 64)
    assert caught.value.code == "hash-mismatch"


def test_faults_power_cut_corrupt_and_health(tmp_path: Path) -> None:
    cut = SimulatedCharger.create(tmp_path / "cut", AC22, "SN-2")
    cut.faults = FaultPlan.parse(["power-cut:byte=70000"])
    with pytest.raises(PowerCut):
        install(cut, image())
    assert cut.slot_path("rootfs", "B").stat().st_size == 70_000  # the torn write is what landed
    reborn = SimulatedCharger(tmp_path / "cut")
    assert reborn.power_on().result == "ok"
    assert running(reborn) == "2.3.0"

    corrupt = SimulatedCharger.create(
        tmp_path / "corrupt",
        AC22,
        "SN-3",
    )
    corrupt.faults = FaultPlan.parse(["corrupt:byte=1234"])
    with pytest.raises(DeviceError, match="SHA-256"):
        install(corrupt, image())

    sick = SimulatedCharger.create(tmp_path / "sick", AC22, "SN-4")
    sick.faults = FaultPlan.parse(["never-available"])
    install(sick, image())
    sick.power_on()
    assert {c["status"] for c in sick.status()["connectors"]} == {"Unavailable"}

    flappy = SimulatedCharger.create(tmp_path / "flap", AC22, "SN-5")
    flappy.faults = FaultPlan.parse(["flap-health"])
    install(flappy, image())
    flappy.power_on()
    observed = [flappy.observed_connectors()[0]["status"] for _ in range(4)]
    assert observed == ["Unavailable", "Available", "Unavailable", "Available"]

    hung = SimulatedCharger.create(tmp_path / "hang", AC22, "SN-6")
    hung.faults = FaultPlan.parse(["hang:phase=commit"])
    install(hung, image())
    hung.power_on()
    with pytest.raises(Hang):
        hung.mark_good("rootfs")


@pytest.mark.parametrize("spec", ["power-cut", "power-cut:byte=x", "hang:phase=never", "rate:0", "explode"])
def test_bad_fault_specs_are_refused(spec: str) -> None:
    with pytest.raises(UsageError, match="not a fault spec"):
        FaultPlan.parse([spec])


def test_transactions_show_as_charging_and_the_meter_never_goes_back(charger: SimulatedCharger) -> None:
    tx = charger.start_transaction(1)
    charger.deliver_energy(1500)
    assert charger.transaction_active
    assert [c["status"] for c in charger.status()["connectors"]] == ["Charging", "Available"]
    with pytest.raises(DeviceError):
        charger.deliver_energy(-1)
    charger.stop_transaction(tx)
    assert not charger.transaction_active and charger.meter_wh == 1500


def test_sigkill_at_random_moments_always_boots_a_verified_image(tmp_path: Path) -> None:
    """A killed simulator is a power cut: 60 of them during install, boot and commit never brick it."""
    state = tmp_path / "sim"
    SimulatedCharger.create(state, AC22, "SN-K")
    rng = random.Random(7)
    versions = {"2.3.0"}
    for kill in range(60):
        version = f"2.{4 + kill}.0"
        versions.add(version)
        pid = os.fork()
        if pid == 0:
            try:
                device = SimulatedCharger(state)
                device.power_on()
                pending = device.components["rootfs"].pending
                if pending is not None and device.components["rootfs"].active == pending:
                    device.mark_bad("rootfs")
                install(device, image(version, 4 + kill, size=400_000), chunk=8192)
                device.power_on()
                device.mark_good("rootfs")
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        device = SimulatedCharger(state)  # state.json always parses
        record = device.power_on()
        assert record.result in ("ok", "fallback"), f"kill {kill}: {record}"
        assert running(device) in versions
        component = device.components["rootfs"]
        assert device.verified("rootfs", component.active), f"kill {kill}: running an unverified image"


def test_sim_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "init", "--state", str(tmp_path / "s"), "--model", "AMP-WB7", "--serial", "AMP-1"]) == 0
    capsys.readouterr()
    assert main(["sim", "status", "--state", str(tmp_path / "s"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identity"]["serial"] == "AMP-1"
    assert report["components"]["app"]["running_version"] == "1.8.0"
    assert main(["sim", "init", "--state", str(tmp_path / "x"), "--model", "NOPE"]) == 2
    assert main(["sim", "status", "--state", str(tmp_path / "none")]) == 2
    assert main(["sim", "init", "--state", str(tmp_path / "s")]) == 9
