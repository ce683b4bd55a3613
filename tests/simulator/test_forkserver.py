"""The simulator's SSH endpoint runs its own programs in forked processes that end like real ones."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.forkserver import ProgramRunner
from fieldkit.simulator.shell import POWER_CUT_STATUS
from fieldkit.simulator.ssh_server import single_program_call


@pytest.fixture
def runner() -> Iterator[ProgramRunner]:
    programs = ProgramRunner()
    try:
        yield programs
    finally:
        programs.stop()


@pytest.fixture
def charger(tmp_path: Path) -> Path:
    state = tmp_path / "charger"
    SimulatedCharger.create(state, model_named("VQ-AC22"), "SN-FORK")
    return state


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("charger-status --json", ["charger-status", "--json"]),
        ("rauc install '/tmp/a b.img'", ["rauc", "install", "/tmp/a b.img"]),
        ("rauc status mark-good booted", ["rauc", "status", "mark-good", "booted"]),
        ("sha256sum /tmp/x", None),  # not one of the charger's programs: the shell runs it
        ("head -c 10 /tmp/x | sha256sum", None),
        ("charger-status --json; reboot", None),
        ("charger-status $(reboot)", None),
        ("charger-status `reboot`", None),
        ("reboot > /dev/null", None),
        ("rauc install 'unterminated", None),
        ("", None),
    ],
)
def test_only_a_plain_call_of_a_charger_program_skips_the_shell(command: str, words: list[str] | None) -> None:
    assert single_program_call(command) == words


def test_a_program_answers_with_its_output_and_status(runner: ProgramRunner, charger: Path) -> None:
    outcome = runner.run(str(charger), "", ["charger-identity", "--json"], 30)
    assert outcome is not None
    status, stdout, _ = outcome
    assert status == 0
    assert json.loads(stdout)["serial"] == "SN-FORK"

    refused = runner.run(str(charger), "", ["rauc", "frobnicate"], 30)
    assert refused is not None
    assert refused[0] == 2
    assert b"unsupported arguments" in refused[2]


def test_a_power_cut_ends_the_command_without_an_answer(runner: ProgramRunner, charger: Path) -> None:
    outcome = runner.run(str(charger), "power-cut:phase=reboot", ["reboot"], 30)
    assert outcome == (POWER_CUT_STATUS, b"", b"")


def test_a_hung_command_is_given_up_after_its_timeout_and_killed(runner: ProgramRunner, charger: Path) -> None:
    started = time.monotonic()
    assert runner.run(str(charger), "hang:phase=reboot", ["reboot"], 0.5) is None
    assert time.monotonic() - started < 10
    # The runner still serves the next command: the hung one did not take the helper with it.
    outcome = runner.run(str(charger), "", ["charger-status", "--json"], 30)
    assert outcome is not None
    assert outcome[0] == 0


def test_after_stop_commands_are_not_run(charger: Path) -> None:
    programs = ProgramRunner()
    programs.stop()
    assert programs.run(str(charger), "", ["charger-status", "--json"], 5) is None
