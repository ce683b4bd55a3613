"""CLI fuzz: every subcommand, every parameter, hostile values: a clean one-line error, never exit 70, never a hang.

Each command starts from a working command line (in a fieldkit home with an
identity, a trust store, keys and a signed bundle), then one parameter at a
time gets a hostile value for its kind: for a file to read, a missing path,
an empty file, garbage, non-UTF-8 text, a 20 MiB file, a directory and a
FIFO; for a file to write, a path in a missing directory, a directory and a
FIFO; for text, an empty string, control characters, markup and 10,000
characters; for numbers, the extremes. Whatever the command makes of it, it
must end with exit 0, or with one `fieldkit: error:` line and a non-zero
code other than 70 (an internal error), within a time limit.

Commands that serve until stopped (`backoffice serve`, `sim ssh`, `sim
serial`, `tui`, `demo run`) get only values refused while the command line
is parsed; their runtime failures (a busy port) are tested in subprocesses.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click
import pytest

from fieldkit.cli.main import cli, main
from tests.support.backoffice import free_port

INVOCATION_LIMIT_S = int(
    os.environ.get("FUZZ_LIMIT", "60")
)  # a hang, not a slow machine: every invocation here fails or succeeds in well under a second
SERVING = {("backoffice", "serve"), ("sim", "ssh"), ("sim", "serial"), ("tui",), ("demo", "run")}


@dataclass
class Home:
    root: Path
    files: dict[str, Path]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """A fieldkit home in use: identity, default trust store trusting a release key, a signed bundle."""
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FIELDKIT_HOME", str(root / "home"))
        (root / "pass").write_text("correct horse battery\n")
        patch.setenv("FIELDKIT_PASSPHRASE_FILE", str(root / "pass"))
        keys = root / "keys"
        for name, role in (("root", "trust-root"), ("rel", "release"), ("disp", "dispatch")):
            _ok("keys", "generate", "--name", name, "--role", role, "--out", str(keys), "--unencrypted")
        _ok("trust", "init", "--root-key", str(keys / "root.key"))
        for name in ("rel", "disp"):
            _ok("trust", "add-key", "--public-key", str(keys / f"{name}.pub"), "--signing-key", str(keys / "root.key"))
        _ok("identity", "init", "--technician-id", "T-1", "--name", "Fuzz", "--passphrase-file", str(root / "pass"))
        manifest = {
            "schema": "fieldkit-bundle", "schema_version": 1, "bundle_id": "vq-ac22-2.5.0", "vendor": "Voltiq",
            "version": "2.5.0", "security_version": 4, "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2036-01-01T00:00:00Z", "compatibility": [{"model": "VQ-AC22", "hardware_revisions": ["C"]}],
            "components": [{"name": "rootfs", "target": "rootfs", "install_method": "rauc", "version": "2.5.0",
                            "order": 0}],
        }  # fmt: skip
        (root / "manifest.json").write_text(json.dumps(manifest))
        (root / "fw.img").write_bytes(os.urandom(4096))
        bundle = root / "b.fwbundle"
        _ok("bundle", "create", "--manifest", str(root / "manifest.json"), "--payload", f"rootfs={root / 'fw.img'}",
            "--out", str(bundle))  # fmt: skip
        _ok("bundle", "sign", str(bundle), "--key", str(keys / "rel.key"))
        order = root / "wo.json"
        _ok("workorder", "create", "--id", "WO-1", "--charger", "SN1", "--bundle-id", "vq-ac22-2.5.0",
            "--not-before", "2026-01-01T00:00:00Z", "--not-after", "2036-01-01T00:00:00Z",
            "--key", str(keys / "disp.key"), "--out", str(order))  # fmt: skip
        hostile = root / "hostile"
        hostile.mkdir()
        (hostile / "empty").write_bytes(b"")
        (hostile / "garbage").write_bytes(b"\x00\xff{[\x1b[31m" * 64)
        (hostile / "latin1").write_bytes("caf\xe9 r\xe9sum\xe9\n".encode("latin-1"))
        with (hostile / "huge").open("wb") as handle:
            handle.truncate(20 * 1024 * 1024)
        os.mkfifo(hostile / "fifo")
        (hostile / "dir").mkdir()
        yield Home(root, {
            "root_key": keys / "root.key", "rel_key": keys / "rel.key", "rel_pub": keys / "rel.pub",
            "disp_key": keys / "disp.key", "pass": root / "pass", "bundle": bundle, "manifest": root / "manifest.json",
            "payload": root / "fw.img", "order": order, "store": root / "home" / "data" / "trust-store.json",
            "identity_pub": root / "home" / "data" / "identity" / "laptop.pub", "hostile": hostile,
        })  # fmt: skip


def _ok(*args: str) -> None:
    assert main(list(args)) == 0, args


def _base(home: Home, path: tuple[str, ...], scratch: Path) -> list[str]:
    """A command line that works (or fails for a reason of its own) before any parameter is made hostile."""
    f = home.files
    closed = f"127.0.0.1:{free_port()}"
    out = str(scratch / "out")
    bases: dict[tuple[str, ...], list[str]] = {
        ("keys", "generate"): ["--name", "k", "--role", "release", "--out", str(scratch / "k"), "--unencrypted"],
        ("trust", "init"): ["--trust-store", str(scratch / "ts.json"), "--root-key", str(f["root_key"])],
        ("trust", "add-key"): [
            "--trust-store",
            str(scratch / "ts.json"),
            "--public-key",
            str(f["rel_pub"]),
            "--signing-key",
            str(f["root_key"]),
        ],
        ("trust", "revoke"): ["0" * 64, "--trust-store", str(scratch / "ts.json"), "--signing-key", str(f["root_key"])],
        ("trust", "show"): [],
        ("trust", "update"): [str(f["store"]), "--trust-store", str(scratch / "ts.json")],
        ("bundle", "create"): ["--manifest", str(f["manifest"]), "--payload", f"rootfs={f['payload']}", "--out", out],
        ("bundle", "sign"): [str(scratch / "copy.fwbundle"), "--key", str(f["rel_key"])],
        ("bundle", "verify"): [str(f["bundle"]), "--model", "VQ-AC22", "--hw-rev", "C"],
        ("bundle", "inspect"): [str(f["bundle"])],
        ("bundle", "import-ocpp"): [
            "--firmware",
            str(f["payload"]),
            "--signature",
            str(f["payload"]),
            "--certificate",
            str(f["payload"]),
            "--vendor",
            "V",
            "--model",
            "M",
            "--hw-rev",
            "A",
            "--fw-version",
            "1.0.0",
            "--security-version",
            "1",
            "--out",
            out,
        ],
        ("demo", "init"): ["--dir", str(scratch / "demo"), "--payload-size", "1024"],
        ("demo", "check"): ["--dir", str(scratch)],
        ("demo", "run"): ["--dir", str(scratch)],
        ("identity", "init"): ["--technician-id", "T-2", "--name", "N"],
        ("identity", "show"): [],
        ("audit", "list"): [],
        ("audit", "show"): ["1"],
        ("audit", "verify"): [],
        ("audit", "export"): ["--out", out],
        ("audit", "status"): [],
        ("audit", "sync"): ["--once", "--credential", str(scratch / "cred.json"), "--max-attempts", "1"],
        ("backoffice", "serve"): ["--db", f"sqlite:///{scratch / 'bo.db'}", "--port", "0"],
        ("backoffice", "enroll-laptop"): [
            "--db",
            f"sqlite:///{scratch / 'bo.db'}",
            "--public-key",
            str(f["identity_pub"]),
            "--name",
            "lap",
            "--backoffice-url",
            "http://127.0.0.1:1",
            "--out",
            out,
        ],
        ("backoffice", "create-operator"): ["--db", f"sqlite:///{scratch / 'bo.db'}", "--name", "op", "--out", out],
        ("backoffice", "publish-trust-store"): [str(f["store"]), "--db", f"sqlite:///{scratch / 'bo.db'}"],
        ("backoffice", "publish-work-order"): [str(f["order"]), "--db", f"sqlite:///{scratch / 'bo.db'}"],
        ("backoffice", "report"): ["chargers", "--db", f"sqlite:///{scratch / 'bo.db'}"],
        ("workorder", "create"): [
            "--id",
            "WO-2",
            "--charger",
            "SN",
            "--bundle-id",
            "b",
            "--not-before",
            "2026-01-01T00:00:00Z",
            "--not-after",
            "2036-01-01T00:00:00Z",
            "--key",
            str(f["disp_key"]),
            "--out",
            out,
        ],
        ("workorder", "import"): [str(f["order"])],
        ("workorder", "list"): [],
        ("workorder", "check"): ["--charger", "SN1", "--bundle-id", "vq-ac22-2.5.0"],
        ("sim", "init"): ["--state", str(scratch / "sim")],
        ("sim", "models"): [],
        ("sim", "status"): ["--state", str(scratch / "sim")],
        ("sim", "ssh"): ["--state", str(scratch / "sim")],
        ("sim", "serial"): ["--state", str(scratch / "sim")],
        ("update",): ["--charger", f"ssh://u@{closed}", "--bundle", str(f["bundle"]), "--yes"],
        ("rollback",): ["--charger", f"ssh://u@{closed}"],
        ("status",): ["--charger", f"ssh://u@{closed}"],
        ("history",): [],
        ("discover",): ["--ssh", closed],
        ("tui",): [],
    }
    return [*path, *bases[path]]


def _commands() -> list[tuple[str, ...]]:
    found = []

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(cli, ())
    return found


def _hostile_values(param: click.Parameter, home: Home, scratch: Path, parse_time_only: bool) -> list[str]:
    h = home.files["hostile"]
    kind = param.type
    if isinstance(kind, click.Path) and not kind.dir_okay:  # a file
        if getattr(kind, "exists", False) or type(kind).__name__ == "RegularFile":  # a file to read
            refused_when_parsed = [
                str(h / "fifo"),
                str(h / "dir"),
                *([str(scratch / "missing")] if kind.exists else []),
            ]
            return refused_when_parsed if parse_time_only else [
                str(scratch / "missing"), str(h / "fifo"), str(h / "dir"), str(h / "empty"), str(h / "garbage"),
                str(h / "latin1"), str(h / "huge")]  # fmt: skip
        return [] if parse_time_only else [str(scratch / "no-such-dir" / "x"), str(h / "dir"), str(h / "fifo")]
    if isinstance(kind, click.Path):  # a directory
        return [] if parse_time_only else [str(h / "garbage"), str(scratch / "no-such-dir" / "deeper")]
    if isinstance(kind, click.IntRange | click.FloatRange):
        return ["99999999999999999999999", "-1", "nan"] if not parse_time_only else ["nan"]
    if (
        isinstance(kind, click.Choice | click.types.BoolParamType)
        or getattr(param, "is_flag", False)
        or parse_time_only
    ):
        return []
    return ["", "\x1b[2J\x1b]0;pwned\x07", "[bold red]x[/]", "a" * 10_000, "../../etc/passwd", "x\ny"]


class _Hang(Exception):
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise _Hang


def _invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(INVOCATION_LIMIT_S)
    try:
        code = main(argv)
    except _Hang:
        code = -1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_parameter_refuses_hostile_values_cleanly(
    home: Home, path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("FIELDKIT_HOME", str(home.root / "home"))
    monkeypatch.setenv("FIELDKIT_PASSPHRASE_FILE", str(home.files["pass"]))
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    serving = path in SERVING
    failures = []
    tried = 0
    for param in command.params:
        if not isinstance(param, click.Option | click.Argument) or param.name in ("help",):
            continue
        for value in _hostile_values(param, home, tmp_path, parse_time_only=serving):
            scratch = tmp_path / f"run-{tried}"
            scratch.mkdir()
            (scratch / "copy.fwbundle").write_bytes(home.files["bundle"].read_bytes())
            argv = _with_value(_base(home, path, scratch), len(path), param, value)
            code, err = _invoke(argv, capsys)
            tried += 1
            errors = [line for line in err.splitlines() if not line.startswith("warning: ")]
            shown = f"{' '.join(path)} {param.name}={value[-40:]!r}: exit {code}: {err[:300]!r}"
            if code == -1:
                failures.append(f"HANG {shown}")
            elif code == 70 or "Traceback" in err:
                failures.append(f"INTERNAL {shown}")
            elif code != 0 and (len(errors) != 1 or not errors[0].startswith("fieldkit: error: ")):
                failures.append(f"NOT ONE LINE {shown}")
            elif "\x1b" in err:
                failures.append(f"RAW ESCAPE {shown}")
    assert not failures, "\n".join(failures)
    if not serving:
        free_form = [p for p in command.params if not isinstance(p.type, click.Choice | click.types.BoolParamType)]
        assert tried > 0 or not free_form, "nothing was tried"


def _with_value(argv: list[str], path_words: int, param: click.Parameter, value: str) -> list[str]:
    """``argv`` with ``param`` set to ``value`` (replacing its value there, or added)."""
    result = list(argv)
    if isinstance(param, click.Argument):
        result[path_words] = value  # every command here has at most one argument, first in its base line
        return result
    flag = next(o for o in param.opts if o.startswith("--"))
    if flag in result:
        assert result.index(flag) + 1 < len(result), (argv, flag)
        result[result.index(flag) + 1] = value
    else:
        result += [flag, value]
    return result


@contextlib.contextmanager
def _busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("command", [["backoffice", "serve"], ["sim", "ssh", "--state", "{tmp}/sim"]])
def test_a_busy_port_is_one_clear_line(command: list[str], tmp_path: Path) -> None:
    with _busy_port() as port:
        argv = [a.replace("{tmp}", str(tmp_path)) for a in command] + ["--port", str(port)]
        if command[0] == "backoffice":
            argv += ["--db", f"sqlite:///{tmp_path / 'bo.db'}"]
        environment = {**os.environ, "FIELDKIT_HOME": str(tmp_path / "home")}
        command_line = [sys.executable, "-m", "fieldkit", *argv]
        result = subprocess.run(command_line, check=False, capture_output=True, text=True, timeout=120, env=environment)
    errors = [line for line in result.stderr.splitlines() if line.startswith("fieldkit: error: ")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and f"port {port} is in use" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
