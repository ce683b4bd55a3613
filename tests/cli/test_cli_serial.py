"""The CLI with MCU boards over mcumgr SMP: found on their serial port, then updated to Committed.

The board is `fieldkit sim serial` on a pseudo-terminal, as a USB-serial
port or a CDC-ACM board appears on a laptop; the bundle is the demo's
AMP-WB7 release (an MCUboot image). Everything goes through the installed
`fieldkit` command, as a technician would type it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldkit.demo import init_demo
from fieldkit.simulator.device import SimulatedCharger

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
BUNDLE = "demo-amp-wb7-1.9.0-OCPP-SIGNED.fwbundle"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    state = tmp_path / "wb7"
    process = subprocess.Popen(
        [FIELDKIT, "sim", "serial", "--state", str(state), "--line", "pty",
         "--turnaround-ms", "0", "--flash-rate", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        assert address.startswith("smp+serial:///dev/"), address
        yield address, state
    finally:
        process.terminate()
        process.wait(timeout=10)


def _run(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIELDKIT_HOME": str(home), "FIELDKIT_PASSPHRASE_FILE": str(home / "pass")}
    return subprocess.run([FIELDKIT, *argv], env=env, capture_output=True, text=True, timeout=180, check=False)


def test_discover_finds_the_board_and_says_what_each_other_port_is(board: tuple[str, Path], tmp_path: Path) -> None:
    address, _state = board
    port = address.removeprefix("smp+serial://")
    master, silent = os.openpty()
    tty.setraw(silent)
    try:
        found = _run(tmp_path, "discover", "--serial", port, "--serial", os.ttyname(silent), "--serial", "/dev/ttyNONE",
                     "--json")  # fmt: skip
    finally:
        os.close(silent)
        os.close(master)
    assert found.returncode == 0, found.stderr
    by_outcome = {r["outcome"]: r for r in json.loads(found.stdout)}
    charger = by_outcome["charger"]
    assert charger["address"] == f"smp+serial://{port}?baud=115200"
    assert charger["identity"]["model"] == "AMP-WB7" and charger["identity"]["transaction_active"] is None
    assert charger["identity"]["fact_sources"]["model"] == "profile", "the board table named it, not the board"
    assert by_outcome["no answer"]["detail"] == "no mcumgr SMP answer at this speed"
    assert by_outcome["unreachable"]["detail"] == "there is no serial port /dev/ttyNONE"


def test_update_over_smp_reaches_committed_and_the_audit_names_the_boards_check(
    board: tuple[str, Path], tmp_path: Path
) -> None:
    address, state = board
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("health_stable_s = 0.3\nhealth_timeout_s = 20\n")
    (home / "pass").write_text("technician passphrase\n")
    demo = tmp_path / "demo"
    init_demo(demo, 120_000)
    assert _run(home, "identity", "init", "--technician-id", "T-1", "--name", "Tech").returncode == 0
    argv = ["update", "--charger", address, "--bundle", str(demo / BUNDLE), "--trust-store",
            str(demo / "trust-store.json"), "--yes"]  # fmt: skip
    refused = _run(home, *argv)
    assert refused.returncode == 13, refused.stderr
    assert "cannot tell whether a vehicle is charging" in refused.stderr

    done = _run(home, *argv, "--confirm-unknown", "transaction", "--confirm-unknown", "security_version_floor")
    assert done.returncode == 0, done.stderr
    app = SimulatedCharger(state).status()["components"]["app"]
    assert (app["running_version"], app["state"], app["pending_slot"]) == ("1.9.0", "committed", None)
    listing = _run(home, "audit", "list", "--json", "--limit", "100")
    verified = [e for e in json.loads(listing.stdout) if "image hash reported by the charger" in str(e)]
    assert verified, "the audit trail records the board's own check as the verification"
