"""The verbs technicians coming from fwupdmgr, `rauc status` or smpmgr expect: status, dry run, history,
and a reinstall or an older version only as an explicit, audited choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fieldkit import config
from fieldkit.cli.main import main
from fieldkit.demo import init_demo
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger

GOOD = "demo-vq-ac22-2.4.0.fwbundle"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[str, Path]:
    """A simulated VQ-AC22 running rootfs 2.3.0, the demo library as the laptop's, and a laptop identity."""
    demo = tmp_path / "demo"
    init_demo(demo, 32 * 1024)
    library = config.data_dir() / "offline_bundles"
    library.mkdir(parents=True)
    for bundle in demo.glob("*.fwbundle"):
        shutil.copy(bundle, library / bundle.name)
    config.default_trust_store_path().write_bytes((demo / "trust-store.json").read_bytes())
    monkeypatch.chdir(tmp_path)  # no offline_bundles/ here: the data directory's library is used
    (tmp_path / "pass").write_text("a long passphrase\n")
    monkeypatch.setenv("FIELDKIT_PASSPHRASE_FILE", str(tmp_path / "pass"))
    assert main(["identity", "init", "--technician-id", "T-1", "--name", "Ana"]) == 0
    state = tmp_path / "ac22"
    SimulatedCharger.create(state, model_named("VQ-AC22"), "SN-STATUS")
    capsys.readouterr()
    return f"sim://{state}", state


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _rootfs(state: Path) -> str:
    return str(SimulatedCharger(state).status()["components"]["rootfs"]["running_version"])


def test_status_shows_the_charger_and_which_bundles_apply(
    site: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    address, _ = site
    report = _json(capsys, "status", "--charger", address)
    assert isinstance(report, dict)
    assert report["serial"] == "SN-STATUS" and report["model"] == "VQ-AC22"
    [rootfs] = [c for c in report["components"] if c["name"] == "rootfs"]
    assert rootfs["version"] == "2.3.0" and rootfs["pending_slot"] is None
    verdicts = {b["bundle"]: b for b in report["bundles"]}
    assert verdicts[GOOD]["applies"] and verdicts[GOOD]["changes"][0] == {
        "component": "rootfs", "from": "2.3.0", "to": "2.4.0", "change": "newer"}  # fmt: skip
    assert not verdicts["demo-vq-ac22-1.9.0-DOWNGRADE.fwbundle"]["applies"]
    assert verdicts["demo-vq-ac11-3.0.0-OTHER-MODEL.fwbundle"]["verdict"] == "wrong-model"
    assert not verdicts["demo-vq-ac22-2.2.0-EXPIRED.fwbundle"]["applies"]
    capsys.readouterr()
    assert main(["status", "--charger", address]) == 0
    out = capsys.readouterr().out
    assert "SN-STATUS" in out and "rootfs 2.3.0" in out and f"applies {GOOD}" in out


def test_dry_run_checks_and_changes_nothing(site: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    address, state = site
    bundle = str(config.data_dir() / "offline_bundles" / GOOD)
    assert main(["update", "--charger", address, "--bundle", bundle, "--dry-run"]) == 0
    assert "preflight passes" in capsys.readouterr().out
    assert _rootfs(state) == "2.3.0"
    downgrade = str(config.data_dir() / "offline_bundles" / "demo-vq-ac22-1.9.0-DOWNGRADE.fwbundle")
    assert main(["update", "--charger", address, "--bundle", downgrade, "--dry-run"]) == 13
    assert "dry run: preflight would refuse" in capsys.readouterr().err
    assert _json(capsys, "history") == [], "a dry run attempts nothing, so nothing is recorded"


def test_a_reinstall_only_when_asked_and_history_has_one_row_per_update(
    site: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    address, state = site
    bundle = str(config.data_dir() / "offline_bundles" / GOOD)
    update = ["update", "--charger", address, "--bundle", bundle, "--yes"]
    assert main(update) == 0
    assert _rootfs(state) == "2.4.0"
    capsys.readouterr()
    assert main(update) == 13, "the same version again is not an update"
    assert "already runs 2.4.0" in capsys.readouterr().err
    assert main([*update, "--allow-reinstall"]) == 0
    rows = _json(capsys, "history", "--charger", "SN-STATUS")
    assert isinstance(rows, list)
    assert [(r["outcome"], r["from_version"], r["to_version"]) for r in rows] == [
        ("Committed", "2.3.0", "2.4.0"), ("Refused", None, None), ("Committed", "2.4.0", "2.4.0")]  # fmt: skip
    assert all(len(r["entries"]) > 1 for r in rows if r["outcome"] == "Committed"), "one row, many transitions"
    entries = _json(capsys, "audit", "list", "--action", "update.version-choice")
    assert isinstance(entries, list) and len(entries) == 1 and "--allow-reinstall" in entries[0]["note"]
