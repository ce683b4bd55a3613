"""A whole update over a rate-limited link, and peak memory while transferring 1 GiB.

Targets (issue #3):
- `fieldkit update` of a 64 MiB bundle over a link limited to 12.5 MB/s
  (100 Mbit/s) takes at most 1.15x the link-limited minimum (64 MiB at
  12.5 MB/s). The whole command is timed: start-up, preflight (bundle
  verification), transfer, on-charger hash check, install, reboot, health
  check (a 0.2 s stable window), commit.
- peak RSS of the `fieldkit update` process while it transfers a 1 GiB
  payload stays below 150 MiB.

The charger is the simulator's own SSH endpoint (`fieldkit sim ssh --rate`),
whose link paces writes to exactly the given rate. Run with `make bench`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from fieldkit.demo import init_demo, make_release_bundle
from fieldkit.simulator.device import SimulatedCharger
from tests.support.laptop import write_laptop_config

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
MIB = 1024 * 1024
LINK_BYTES_PER_S = 12_500_000


class Charger:
    def __init__(self, directory: Path, faults: list[str]) -> None:
        self.state = directory / "charger"
        self.process = subprocess.Popen(
            [FIELDKIT, "sim", "ssh", "--state", str(self.state), "--port", "0", *(f"--fault={f}" for f in faults)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().strip()
        assert self.address.startswith("ssh://"), self.address

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _laptop(tmp_path: Path) -> tuple[dict[str, str], Path]:
    home = tmp_path / "home"
    home.mkdir()
    write_laptop_config(home, tmp_path / "staging", 0.2, 30)
    demo = tmp_path / "demo"
    init_demo(demo, 64 * 1024)
    return {**os.environ, "FIELDKIT_HOME": str(home)}, demo


def _update_argv(charger: Charger, bundle: Path, demo: Path) -> list[str]:
    return [
        FIELDKIT,
        "update",
        "--charger",
        charger.address,
        "--bundle",
        str(bundle),
        "--trust-store",
        str(demo / "trust-store.json"),
        "--ssh-key",
        str(charger.state / "client_key"),
        "--accept-new-host-key",
        "--yes",
        "--json",
    ]


def test_update_of_64_mib_over_a_100_mbit_link(tmp_path: Path) -> None:
    env, demo = _laptop(tmp_path)
    bundle = make_release_bundle(tmp_path / "update.fwbundle", "VQ-AC22", "2.4.0", 4, 64 * MIB)
    payload_bytes = 64 * MIB
    charger = Charger(tmp_path, [f"rate:{LINK_BYTES_PER_S}"])
    try:
        start = time.perf_counter()
        argv = _update_argv(charger, bundle, demo)
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
    finally:
        charger.stop()
    assert result.returncode == 0, result.stderr
    assert SimulatedCharger(charger.state).status()["components"]["rootfs"]["running_version"] == "2.4.0"
    minimum = payload_bytes / LINK_BYTES_PER_S
    ratio = elapsed / minimum
    print(f"\nlink minimum (64 MiB at 12.5 MB/s)  {minimum:6.2f} s")
    print(f"fieldkit update, end to end         {elapsed:6.2f} s")
    print(f"ratio                               {ratio:6.2f}  (target <= 1.15)")
    assert ratio <= 1.15


def _vm_hwm_bytes(pid: int) -> int:
    """The process's own peak resident set (VmHWM), read while it runs."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def test_peak_memory_while_transferring_1_gib(tmp_path: Path) -> None:
    env, demo = _laptop(tmp_path)
    bundle = make_release_bundle(tmp_path / "big.fwbundle", "VQ-AC22", "2.4.0", 4, 1024 * MIB)
    charger = Charger(tmp_path, [])
    peak = 0
    try:
        process = subprocess.Popen(
            _update_argv(charger, bundle, demo), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                try:
                    peak = max(peak, _vm_hwm_bytes(process.pid))
                except (FileNotFoundError, ProcessLookupError):
                    return
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, stderr = process.communicate(timeout=600)
        done.set()
        sampler.join(timeout=5)
    finally:
        charger.stop()
    assert process.returncode == 0, stderr
    print(f"\npeak RSS of `fieldkit update` over a 1 GiB transfer  {peak / MIB:6.1f} MiB  (target < 150 MiB)")
    assert 0 < peak < 150 * MIB
