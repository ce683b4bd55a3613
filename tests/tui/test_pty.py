"""The real `fieldkit` program in a pseudo-terminal: `fieldkit demo run` (what `make demo` opens),
an update of a simulated charger with the keyboard only, the final screen and the charger's state.

The terminal is emulated with pyte, so the test reads the screen a technician would see.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pexpect
import pytest

from fieldkit.demo import init_demo
from fieldkit.simulator.device import SimulatedCharger
from tests.support.laptop import write_laptop_config
from tests.support.terminal import COLUMNS, Terminal

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))


def test_an_update_with_the_keyboard_only_in_a_real_terminal(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    init_demo(demo, 128 * 1024)
    home = demo / "home"  # the demo's own home: settings placed there tune it
    home.mkdir()
    write_laptop_config(home, tmp_path / "staging", 0.5, 20)
    real_home = tmp_path / "real-home"  # the technician's own fieldkit home, which the demo must not touch
    (real_home / "data" / "jobs").mkdir(parents=True)
    (real_home / "data" / "jobs" / "unfinished.json").write_text("{}")
    env = {**os.environ, "FIELDKIT_HOME": str(real_home), "TERM": "xterm-256color", "COLUMNS": str(COLUMNS)}
    terminal = Terminal([FIELDKIT, "demo", "run", "--dir", str(demo)], env)
    try:
        terminal.wait_for("5 charger(s) found")
        terminal.keys(" ")  # the first row: the VQ-AC22
        terminal.keys("2")
        terminal.wait_for("bundle(s)")
        bundles = sorted(p.name for p in demo.glob("*.fwbundle"))
        terminal.keys(*["\x1b[B"] * bundles.index("demo-vq-ac22-2.4.0.fwbundle"), "\r")  # arrow down, Enter
        terminal.keys("3", "p")
        terminal.wait_for("1 ready, 0 refused")
        terminal.keys("s")
        terminal.wait_for("Start this update?")
        terminal.keys("y")
        terminal.wait_for("Committed: SIM-AC22-0001 runs rootfs 2.4.0")
        final = terminal.text()
        terminal.keys("q")
        terminal.child.expect(pexpect.EOF, timeout=20)
    finally:
        if terminal.child.isalive():  # the demo and the chargers and back office it started: one session
            with contextlib.suppress(ProcessLookupError):
                os.killpg(terminal.child.pid, signal.SIGKILL)
    assert "Voltiq VQ-AC22 SIM-AC22-0001" in final
    status = SimulatedCharger(demo / "sims" / "ac22").status()["components"]["rootfs"]
    assert (status["running_version"], status["state"]) == ("2.4.0", "committed")
    assert terminal.child.exitstatus == 0
    untouched = sorted(str(p.relative_to(real_home)) for p in real_home.rglob("*"))
    assert untouched == ["data", "data/jobs", "data/jobs/unfinished.json"], f"the demo wrote the real home: {untouched}"


@pytest.mark.parametrize(("rows", "columns"), [(24, 80), (40, 120)], ids=["80x24", "120x40"])
def test_the_demo_updates_twice_cancels_in_health_check_quits_mid_transfer_and_offers_to_resume(
    tmp_path: Path, rows: int, columns: int
) -> None:
    """What a new technician did with `make demo`, in a real terminal at both sizes:

    - a second update of the same charger killed the TUI (DuplicateIds), and `c` during the health check
      was ignored until it timed out: the demo's NV-AC7 never becomes healthy, so each of its two updates
      is cancelled while it waits, and must roll back at once;
    - `q` mid-transfer blanked the screen for minutes and left the job half done, and the next `make demo`
      deleted its journal, so the resume offer was never seen: quit during the KS-DC60's transfer, then the
      next start must offer to resume it;
    - tables cut serials to "SIM-AC" and dropped versions at 80 columns.
    """
    demo = tmp_path / "demo"
    init_demo(demo, 1024 * 1024)  # the KS-DC60's link carries 256 KiB/s: its transfer takes seconds
    home = demo / "home"  # the demo's own home: settings placed there tune it
    home.mkdir()
    write_laptop_config(home, tmp_path / "staging", 0.5, 120)  # a health check that would wait two minutes
    env = {**os.environ, "FIELDKIT_HOME": str(tmp_path / "real-home"), "TERM": "xterm-256color"}
    bundles = sorted(p.name for p in demo.glob("*.fwbundle"))  # the library lists them by name
    up, down = "\x1b[A", "\x1b[B"
    first = Terminal([FIELDKIT, "demo", "run", "--dir", str(demo)], env, rows=rows, columns=columns)
    try:
        first.wait_for("5 charger(s) found")
        chargers_screen = first.text()
        first.keys(down, down, down, " ")  # the fourth row: the NV-AC7
        first.keys("2")
        first.wait_for("bundle(s)")
        bundles_screen = first.text()
        first.keys(*[down] * bundles.index("demo-nv-ac7-1.5.0.fwbundle"), "\r")
        first.keys("3")
        for attempt in range(2):
            first.keys("p")
            first.wait_for("1 ready, 0 refused")
            first.keys("s")
            first.wait_for("Start this update?")
            first.keys("y")
            first.wait_for("gives up in")  # the health check, with the connectors' live state
            assert "RolledBack" not in first.text(), "the first update's panel is replaced by the second's"
            cancelled_at = time.monotonic()
            first.keys("c")
            first.wait_for("RolledBack", timeout_s=60)
            assert time.monotonic() - cancelled_at < 60, f"update {attempt + 1}: the cancel waited out the check"
        # Now the KS-DC60 (third row) instead of the NV-AC7 (fourth): each screen keeps its cursor.
        first.keys("1")
        first.wait_for("charger(s) found")
        first.keys(up, " ", down, " ")
        first.keys("2")
        nv_ac7, ks_dc60 = bundles.index("demo-nv-ac7-1.5.0.fwbundle"), bundles.index("demo-ks-dc60-3.2.0.fwbundle")
        first.keys(*[up if ks_dc60 < nv_ac7 else down] * abs(nv_ac7 - ks_dc60), "\r")
        first.wait_for("bundle for the update")
        chosen = [line for line in first.text().splitlines() if "->" in line]
        assert len(chosen) == 1 and "demo-ks-dc60-3.2.0.fwbundle" in chosen[0], first.text()
        first.keys("3", "p")
        first.wait_for("1 ready, 0 refused")
        first.keys("s")
        first.wait_for("Start this update?")
        first.keys("y")
        first.wait_for("Downloading")
        first.keys("q")
        first.wait_for("update(s) running")
        first.keys("y")
        first.child.expect(pexpect.EOF, timeout=30)
    finally:
        if first.child.isalive():  # the demo and the chargers and back office it started: one session
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.child.pid, signal.SIGKILL)
    first.child.close()
    assert first.child.exitstatus == 0, "an update of the same charger, or quitting, ended the program badly"
    assert b"left running" in (first.child.before or b"") or "left running" in first.text()
    nv_ac7_components = SimulatedCharger(demo / "sims" / "nv-ac7").status()["components"]
    assert all(c["running_version"] == "1.4.0" for c in nv_ac7_components.values()), nv_ac7_components
    # The columns that matter are whole, at 80 columns too.
    for serial, model, version in [
        ("SIM-AC22-0001", "VQ-AC22", "2.3.0"),
        ("SIM-DC150-0002", "VQ-DC150", "4.1.0, 4.1.0"),
    ]:
        row = next((line for line in chargers_screen.splitlines() if serial in line), "")
        assert model in row and version in row, (
            f"{serial} {model} {version} not whole at {columns}x{rows}:\n{chargers_screen}"
        )
    for name in bundles[:6]:  # those the table has room for at 24 rows
        assert name in bundles_screen, f"{name} cut at {columns}x{rows}:\n{bundles_screen}"
    # The next start in the same (demo) home: the TUI reads the journal before any charger answers.
    again = {**env, "FIELDKIT_HOME": str(home), "FIELDKIT_PASSPHRASE_FILE": str(demo / "home-secret" / "passphrase")}
    second = Terminal(
        [FIELDKIT, "tui", "--trust-store", str(demo / "trust-store.json")], again, rows=rows, columns=columns
    )
    try:
        second.wait_for("1 interrupted update job(s)")
        assert "SIM-KS60-0003" in second.text()
    finally:
        second.close()
