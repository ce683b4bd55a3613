"""The laptop's own process killed (SIGKILL) at 20 random offsets of one transfer.

Each time `fieldkit update --resume` continues from what the charger holds,
and over all 20 interruptions nothing the charger already had is sent again
beyond one chunk per interruption. The link is stalled at each chosen offset
so the kill lands there; whatever was in flight when the laptop died still
lands, as on a real link.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from fieldkit.demo import init_demo, make_release_bundle
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.transports.ssh import SFTP_CHUNK_BYTES
from tests.support.drivers import settled_size
from tests.support.laptop import write_laptop_config
from tests.support.simssh import running_sim

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
PAYLOAD_BYTES = 80 * 1024 * 1024
KILLS = 20


def test_twenty_kills_of_the_laptop_process_each_resend_at_most_one_chunk(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    write_laptop_config(home, tmp_path / "staging", 1, 10)
    demo = tmp_path / "demo"
    init_demo(demo, 64 * 1024)
    bundle = make_release_bundle(tmp_path / "big.fwbundle", "VQ-AC22", "2.4.0", 4, PAYLOAD_BYTES)
    env = {**os.environ, "FIELDKIT_HOME": str(home)}
    trust = ["--trust-store", str(demo / "trust-store.json")]
    rng = random.Random(20261124)
    with running_sim(tmp_path / "charger") as sim:
        budget = sim.server.budget
        first = [
            FIELDKIT,
            "update",
            "--charger",
            sim.address,
            "--bundle",
            str(bundle),
            *trust,
            "--ssh-key",
            str(sim.client_key),
            "--accept-new-host-key",
            "--yes",
        ]
        resume = [FIELDKIT, "update", "--resume", *trust]
        staged: Path | None = None
        held, kill_offsets = 0, []
        for attempt in range(KILLS):
            offset = held + rng.randrange(64 * 1024, 1024 * 1024)
            received_before = budget.received
            budget.stall_at(received_before + (offset - held))
            process = subprocess.Popen(
                first if attempt == 0 else resume, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            assert budget.stalled.wait(timeout=60), f"attempt {attempt}: the transfer never reached {offset}"
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            budget.release()
            staged = staged or next(SimulatedCharger(tmp_path / "charger").staging_dir.glob("*.img"))
            landed = settled_size(staged)
            assert held < landed < PAYLOAD_BYTES, f"attempt {attempt}: the kill at {offset} landed at {landed}"
            resent = (budget.received - received_before) - (landed - held)
            assert resent <= SFTP_CHUNK_BYTES, f"attempt {attempt}: {resent} bytes the charger had were sent again"
            kill_offsets.append(offset)
            held = landed
        received_before = budget.received
        done = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert budget.received - received_before == PAYLOAD_BYTES - held
    assert len(kill_offsets) == KILLS
    job = json.loads(next((home / "data" / "jobs").glob("*.json")).read_text())
    assert job["state"] == "Committed"
    assert sum(1 for h in job["history"] if h["state"] == "Downloading") == 1, "one transfer, resumed, not restarted"
    assert SimulatedCharger(sim.state).status()["components"]["rootfs"]["running_version"] == "2.4.0"
