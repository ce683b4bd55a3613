"""README's commands stay true: every `fieldkit` line in its fenced blocks names a real command with real
options, and the safe ones run as written from a checkout after `make demo` (which writes .demo/).

Safe: they read, or write only into the demo's files (bundle verify/inspect, demo check, status of nothing,
the audit trail's reports). Commands that need a charger, a back office or a real key are checked for their
command and options only.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from fieldkit.cli.main import cli, main
from fieldkit.demo import init_demo

README = Path(__file__).resolve().parents[2] / "README.md"
SAFE = {
    ("bundle", "verify"), ("bundle", "inspect"), ("demo", "check"), ("sim", "models"), ("history",),
    ("audit", "list"), ("audit", "verify"), ("audit", "status"), ("trust", "show"), ("workorder", "list"),
    (),  # `fieldkit --version`
}  # fmt: skip


def readme_commands() -> list[str]:
    """Each `fieldkit ...` command of the README's fenced blocks, continuation lines joined, comments dropped."""
    commands, in_block = [], False
    text = README.read_text(encoding="utf-8")
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        stripped = re.sub(r"\s+#.*$", "", line).strip()
        if in_block and re.match(r"^(\.venv/bin/)?fieldkit(\s|$)", stripped):
            commands.append(stripped)
    return commands


def _command_of(words: list[str]) -> tuple[tuple[str, ...], click.Command]:
    command: click.Command = cli
    path: list[str] = []
    for word in words:
        if not isinstance(command, click.Group) or word.startswith("-") or word not in command.commands:
            break
        command = command.commands[word]
        path.append(word)
    return tuple(path), command


def test_the_readme_has_commands_to_check() -> None:
    assert len(readme_commands()) >= 30


@pytest.mark.parametrize("line", readme_commands())
def test_every_readme_command_names_real_options(line: str) -> None:
    words = shlex.split(re.sub(r"\[|\]|\|", " ", line))[1:]
    path, command = _command_of(words)
    assert path or all(w.startswith("--") for w in words), f"{line!r}: no such command"  # or the program's options
    known = {opt for param in command.params for opt in getattr(param, "opts", [])} | {"--help"}
    named = {w.split("=")[0] for w in words if w.startswith("--")}
    assert named <= known, f"{line!r}: {sorted(named - known)} are not options of `fieldkit {' '.join(path)}`"


def test_the_safe_readme_commands_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldkit import config
    from fieldkit.audit.identity import init_identity

    init_demo(tmp_path / ".demo", 64 * 1024)
    monkeypatch.chdir(tmp_path)
    # As README's order has it: an identity (`identity init`) and a trust store in the fieldkit home.
    init_identity("T-17", "Ana Lima", "Depot 4", b"a long passphrase")
    config.default_trust_store_path().write_bytes((tmp_path / ".demo" / "trust-store.json").read_bytes())
    ran = 0
    for line in readme_commands():
        if any(mark in line for mark in ("[", "|", "FILE", "SN", "KEY", "192.0.2.", "...")):
            continue  # a synopsis with placeholders, not a command to paste
        words = shlex.split(line)[1:]
        path, _ = _command_of(words)
        if path not in SAFE:
            continue
        capsys.readouterr()
        code = main(words)
        err = capsys.readouterr().err
        assert code == 0, f"{line!r} exited {code}: {err}"
        ran += 1
    assert ran >= 2, "the README's runnable examples were not found"
