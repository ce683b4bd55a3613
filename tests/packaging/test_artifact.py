"""`make dist` end to end: build the one-folder artifact and run it as a locked-down laptop would.

Marked slow and kept out of `make test` (the build takes minutes); `make test-dist` runs it, and so does
.ci/run. The artifact runs under `env -i`: no venv, no PYTHONPATH, no Python on PATH to fall back on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.support.terminal import Terminal

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
BARE_PATH = "/usr/bin:/bin"  # what a locked-down laptop's PATH holds: no venv, nothing of ours


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, work = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("build")
    subprocess.run(["bash", str(PROJECT / "packaging" / "build-dist.sh"), str(out), str(work)], check=True)
    return out


def _bare_env(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": BARE_PATH, "HOME": str(home), "FIELDKIT_HOME": str(home / "fieldkit"), **extra}


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def test_the_artifact_holds_everything_the_build_promised(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert any(n.endswith(".tar.gz") for n in names), names
    sbom = next(dist.glob("*.cdx.json"))
    components = {c["name"].lower() for c in json.loads(sbom.read_text())["components"]}
    assert {"textual", "paramiko", "cryptography", "pydantic"} <= components
    assert not components & {"pip", "pyinstaller", "pytest", "mypy", "ruff"}, "the SBOM is of the runtime only"
    checksums = (dist / "SHA256SUMS").read_text()
    assert sbom.name in checksums and "requirements.lock" in checksums


def test_version_and_bundle_verify_run_with_no_python_around(dist: Path, tmp_path: Path) -> None:
    exe = str(dist / "fieldkit" / "fieldkit")
    version = _run([exe, "--version"], _bare_env(tmp_path))
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("fieldkit ") and "trust store: none at" in version.stdout
    demo = tmp_path / "demo"
    made = _run([exe, "demo", "init", "--dir", str(demo), "--payload-size", str(128 * 1024)], _bare_env(tmp_path))
    assert made.returncode == 0, made.stderr
    verified = _run(
        [exe, "bundle", "verify", str(demo / "demo-vq-ac22-2.4.0.fwbundle"), "--trust-store",
         str(demo / "trust-store.json")],
        _bare_env(tmp_path),
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("valid: demo-vq-ac22-2.4.0.fwbundle")
    expired = _run(
        [exe, "bundle", "verify", str(demo / "demo-vq-ac22-2.2.0-EXPIRED.fwbundle"), "--trust-store",
         str(demo / "trust-store.json")],
        _bare_env(tmp_path),
    )  # fmt: skip
    assert expired.returncode != 0 and "expired" in expired.stdout + expired.stderr


@contextlib.contextmanager
def _terminal(argv: list[str], env: dict[str, str]) -> Iterator[Terminal]:
    terminal = Terminal(["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv], {}, rows=24, columns=80)
    try:
        yield terminal
    finally:
        if terminal.child.isalive():  # the demo's chargers and back office: one process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(terminal.child.pid, signal.SIGKILL)


def test_every_screen_opens_against_simulated_chargers_in_a_terminal(dist: Path, tmp_path: Path) -> None:
    """The demo from the artifact: its simulated chargers and back office are the artifact itself, started
    with `-m fieldkit...` helpers, and every screen's lazily imported widgets must be in the build."""
    exe = str(dist / "fieldkit" / "fieldkit")
    env = _bare_env(tmp_path, TERM="xterm-256color")
    with _terminal([exe, "demo", "run", "--dir", str(tmp_path / "demo")], env) as terminal:
        terminal.wait_for("5 charger(s) found", timeout_s=120)
        assert "SIM-AC22-0001" in terminal.text()
        for key, marker in [
            ("2", "valid for the 5 charger(s) found"),
            ("3", "Bundle: none"),
            ("4", "interrupted job"),
            ("5", "entries ·"),
            ("6", "Trust store"),
            ("?", "Update a charger:"),
        ]:
            terminal.keys(key)
            terminal.wait_for(marker, timeout_s=30)
        terminal.keys("\x1b", "1")  # leave help, back to the chargers
        terminal.keys(" ", "u")  # select the first charger and go to the update screen with it
        terminal.wait_for("Chargers: SIM-AC22-0001", timeout_s=30)
        terminal.keys("q")
        terminal.child.expect(pexpect.EOF, timeout=60)
        terminal.child.close()
    assert terminal.child.exitstatus == 0


def _start_s(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    assert _run(argv, env).returncode == 0
    return time.perf_counter() - start


def test_start_up_against_the_venv(dist: Path, tmp_path: Path) -> None:
    """One folder, nothing to unpack: `--version` of the artifact against `python -m fieldkit` in the venv,
    measured in the same run, turn about, so that a busy machine slows both alike (figures in the closing
    note and packaging/README.md). A one-file build, unpacking itself at each start, is several times slower."""
    artifact_argv = [str(dist / "fieldkit" / "fieldkit"), "--version"]
    venv_argv = [sys.executable, "-m", "fieldkit", "--version"]
    env = _bare_env(tmp_path)
    for argv in (artifact_argv, venv_argv):  # the first runs warm the page cache for both
        _start_s(argv, env)
    artifact, venv = [], []
    for _ in range(9):
        artifact.append(_start_s(artifact_argv, env))
        venv.append(_start_s(venv_argv, env))
    ratio = statistics.median(artifact) / statistics.median(venv)
    print(f"\nstart-up (--version, median of 9): artifact {statistics.median(artifact) * 1000:.0f} ms, "
          f"venv {statistics.median(venv) * 1000:.0f} ms, ratio {ratio:.2f}")  # fmt: skip
    assert ratio < 2.5, "the one-folder build should start in about the venv's time; this is far off"


def test_the_wheelhouse_installs_into_a_fresh_venv_with_no_index(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheelhouse = dist / "wheelhouse"
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-index", "--find-links", str(wheelhouse),
         "--require-hashes", "-r", str(wheelhouse / "requirements.lock")],
        check=True, timeout=600, env={"PATH": BARE_PATH, "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    version = _run([str(venv / "bin" / "fieldkit"), "--version"], _bare_env(tmp_path))
    assert version.returncode == 0 and version.stdout.startswith("fieldkit ")
