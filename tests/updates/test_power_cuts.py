"""Power cuts at every phase of an update, and at random byte offsets of the transfer and
of the activation (the slot write): the charger always boots a verified image, and the job
ends Committed (directly or after `fieldkit update --resume`), never half done.

A supervisor restarts the simulated charger on the same port whenever it loses
power, without the fault (a power cut happens once), as a charger comes back
when power returns.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fieldkit.demo import init_demo
from fieldkit.simulator.device import SimulatedCharger
from tests.support.backoffice import free_port
from tests.support.laptop import write_laptop_config

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))


PAYLOAD_BYTES = 512 * 1024
_offsets = random.Random(1124)  # fixed seed: a failure can be replayed
ACTIVATION_CUTS = [f"power-cut:byte={n}" for n in sorted(_offsets.sample(range(1, PAYLOAD_BYTES), 4))]
TRANSFER_CUTS = [f"transfer-cut:byte={n}" for n in sorted(_offsets.sample(range(1, PAYLOAD_BYTES), 3))]
TRANSFER_RATE_BYTES_PER_S = 256 * 1024


class Supervisor:
    def __init__(self, state: Path, port: int, fault: str) -> None:
        self.state, self.port = state, port
        self.stopping = threading.Event()
        self.cuts = 0
        # "transfer-cut:byte=N" is this test's own: power lost while the image is still being
        # received, i.e. the simulator process killed once N bytes are staged.
        self.transfer_cut = int(fault.partition("=")[2]) if fault.startswith("transfer-cut") else None
        self.process = self._start([f"rate:{TRANSFER_RATE_BYTES_PER_S}"] if self.transfer_cut else [fault])
        if self.transfer_cut is not None:
            threading.Thread(target=self._cut_during_transfer, daemon=True).start()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _start(self, faults: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [
                FIELDKIT,
                "sim",
                "ssh",
                "--state",
                str(self.state),
                "--port",
                str(self.port),
                *(f"--fault={f}" for f in faults),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().startswith("ssh://")
        return process

    def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                self.process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            if self.stopping.is_set():
                return
            self.cuts += 1
            self.process = self._start([])  # power is back; the same fault does not strike twice

    def _cut_during_transfer(self) -> None:
        assert self.transfer_cut is not None
        staging = SimulatedCharger(self.state).staging_dir  # the charger names its own
        deadline = time.monotonic() + 60
        while not self.stopping.is_set() and time.monotonic() < deadline:
            staged = next(staging.glob("*.img"), None) if staging.exists() else None
            if staged is not None and staged.stat().st_size >= self.transfer_cut:
                self.process.send_signal(signal.SIGKILL)
                return
            time.sleep(0.005)

    def wait_up(self, timeout_s: float = 30) -> None:
        """Until the charger is back after its power cut and answers on its port."""
        import socket
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.cuts and self.process.poll() is None:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                        return
            time.sleep(0.1)
        raise AssertionError("the simulated charger did not come back")

    def stop(self) -> None:
        self.stopping.set()
        self.process.terminate()
        self.process.wait(timeout=10)
        self.thread.join(timeout=5)


@pytest.mark.parametrize(
    "fault",
    ["power-cut:phase=install", *TRANSFER_CUTS, *ACTIVATION_CUTS, "power-cut:phase=reboot", "power-cut:phase=commit"],
)
def test_a_power_cut_at_any_phase_ends_committed_on_a_verified_image(tmp_path: Path, fault: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_laptop_config(home, tmp_path / "staging", 1, 10)
    demo = tmp_path / "demo"
    init_demo(demo, PAYLOAD_BYTES)
    state, port = tmp_path / "charger", free_port()
    subprocess.run(
        [FIELDKIT, "sim", "init", "--state", str(state), "--model", "VQ-AC22"], check=True, capture_output=True
    )
    supervisor = Supervisor(state, port, fault)
    env = {**os.environ, "FIELDKIT_HOME": str(home)}
    try:
        update = subprocess.run(
            [
                FIELDKIT,
                "update",
                "--charger",
                f"ssh://root@127.0.0.1:{port}",
                "--bundle",
                str(demo / "demo-vq-ac22-2.4.0.fwbundle"),
                "--trust-store",
                str(demo / "trust-store.json"),
                "--ssh-key",
                str(state / "client_key"),
                "--accept-new-host-key",
                "--yes",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if update.returncode != 0:
            assert update.returncode == 10, update.stderr  # the link went with the power: resumable
            assert "update --resume" in update.stderr
            supervisor.wait_up()  # the technician resumes once the charger is back
            resumed = subprocess.run(
                [FIELDKIT, "update", "--resume", "--trust-store", str(demo / "trust-store.json")],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert resumed.returncode == 0, resumed.stderr
        assert supervisor.cuts == 1, "the fault should have cut the power exactly once"
    finally:
        supervisor.stop()
    job = json.loads(next((home / "data" / "jobs").glob("*.json")).read_text())
    assert job["state"] == "Committed"
    charger = SimulatedCharger(state)
    component = charger.components["rootfs"]
    assert (component.committed, component.pending) == (component.active, None)
    assert charger.status()["components"]["rootfs"]["running_version"] == "2.4.0"
    assert charger.verified("rootfs", component.active)
