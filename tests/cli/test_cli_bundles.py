"""The CLI contract: command names, options, exit codes, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fieldkit
from fieldkit.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def keyring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Root (encrypted) and release keys, and a trust store trusting the release key."""
    (tmp_path / "pass").write_text("correct horse\n")
    for name, role, extra in (
        ("root", "trust-root", ["--passphrase-file", str(tmp_path / "pass")]),
        ("rel", "release", ["--unencrypted"]),
        ("met", "metrology", ["--unencrypted"]),
    ):
        assert (
            run(capsys, "keys", "generate", "--name", name, "--role", role, "--out", str(tmp_path / "k"), *extra)[0]
            == 0
        )
    store = ["--trust-store", str(tmp_path / "ts.json")]
    signing = ["--signing-key", str(tmp_path / "k/root.key"), "--passphrase-file", str(tmp_path / "pass")]
    assert (
        run(
            capsys,
            "trust",
            "init",
            *store,
            "--root-key",
            str(tmp_path / "k/root.key"),
            "--passphrase-file",
            str(tmp_path / "pass"),
        )[0]
        == 0
    )
    assert run(capsys, "trust", "add-key", *store, "--public-key", str(tmp_path / "k/rel.pub"), *signing)[0] == 0
    assert run(capsys, "trust", "add-key", *store, "--public-key", str(tmp_path / "k/met.pub"), *signing)[0] == 0
    return tmp_path


MANIFEST = {
    "schema": "fieldkit-bundle",
    "schema_version": 1,
    "bundle_id": "vq-ac22-2.5.0",
    "vendor": "Voltiq",
    "version": "2.5.0",
    "security_version": 4,
    "created_at": "2026-01-01T00:00:00Z",
    "expires_at": "2036-01-01T00:00:00Z",
    "compatibility": [{"model": "VQ-AC22", "hardware_revisions": ["B", "C"]}],
    "release_notes": "# 2.5.0\n\n- safer",
    "components": [{"name": "rootfs", "target": "rootfs", "install_method": "rauc", "version": "2.5.0", "order": 0}],
}


def _create(keyring: Path, capsys: pytest.CaptureFixture[str], manifest: dict[str, object] = MANIFEST) -> Path:
    (keyring / "m.json").write_text(json.dumps(manifest))
    (keyring / "fw.img").write_bytes(os.urandom(50_000))
    out = keyring / "b.fwbundle"
    code, _, err = run(
        capsys,
        "bundle",
        "create",
        "--manifest",
        str(keyring / "m.json"),
        "--payload",
        f"rootfs={keyring / 'fw.img'}",
        "--out",
        str(out),
    )
    assert code == 0, err
    return out


def test_release_engineer_flow(keyring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _create(keyring, capsys)
    store = ["--trust-store", str(keyring / "ts.json")]
    code, _, err = run(capsys, "bundle", "verify", str(bundle), *store)
    assert (code, err.count("\n")) == (3, 1)
    assert "carries no signature" in err
    assert run(capsys, "bundle", "sign", str(bundle), "--key", str(keyring / "k/rel.key"))[0] == 0
    code, out, _ = run(
        capsys,
        "bundle",
        "verify",
        str(bundle),
        *store,
        "--model",
        "VQ-AC22",
        "--hw-rev",
        "C",
        "--installed-security-version",
        "4",
    )
    assert code == 0
    assert out.startswith("valid")
    code, out, _ = run(capsys, "bundle", "verify", str(bundle), *store, "--json")
    report = json.loads(out)
    assert report["valid"] is True
    assert [c["check"] for c in report["checks"]][:3] == ["container", "signatures", "manifest"]
    code, out, _ = run(capsys, "bundle", "inspect", str(bundle), *store)
    assert code == 0
    assert "VQ-AC22" in out and "safer" in out and "rel" in out


@pytest.mark.parametrize(
    ("facts", "code_text"),
    [
        (["--model", "VQ-DC150"], "not VQ-DC150"),
        (["--model", "VQ-AC22", "--hw-rev", "Z"], "not Z"),
        (["--installed-security-version", "9"], "below the charger's floor 9"),
    ],
)
def test_refusals_are_one_line_with_exit_3(
    keyring: Path, capsys: pytest.CaptureFixture[str], facts: list[str], code_text: str
) -> None:
    bundle = _create(keyring, capsys)
    run(capsys, "bundle", "sign", str(bundle), "--key", str(keyring / "k/rel.key"))
    code, out, err = run(capsys, "bundle", "verify", str(bundle), "--trust-store", str(keyring / "ts.json"), *facts)
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1 and code_text in err and " — " in err
    assert "Traceback" not in err


def test_json_report_of_a_refused_bundle_lists_every_check(keyring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _create(keyring, capsys)
    code, out, _ = run(capsys, "bundle", "verify", str(bundle), "--trust-store", str(keyring / "ts.json"), "--json")
    report = json.loads(out)
    assert code == 3
    statuses = [(c["check"], c["status"]) for c in report["checks"]]
    assert statuses[0] == ("container", "passed")
    assert statuses[1] == ("signatures", "failed")
    assert {s for _, s in statuses[2:]} == {"skipped"}


@pytest.mark.parametrize(
    ("args", "expected_code", "text"),
    [
        (["bundle", "verify", "/no/such.fwbundle", "--trust-store", "{ts}"], 2, "does not exist"),
        (["bundle", "verify", "{m}", "--trust-store", "{ts}"], 3, "not a ZIP"),
        (["bundle", "verify", "{m}", "--trust-store", "{m}"], 4, "must hold exactly"),
        (["bundle", "verify", "{m}", "--trust-store", "/no/store.json"], 4, "no trust store"),
        (["bundle", "create", "--manifest", "{m}", "--payload", "rootfs", "--out", "x"], 2, "NAME=PATH"),
        (
            ["bundle", "create", "--manifest", "{m}", "--payload", "other=/etc/hostname", "--out", "x"],
            2,
            "names no component",
        ),
        (["bundle", "sign", "{m}", "--key", "{m}"], 2, "not a PEM private key"),
        (["bundle", "verify", "{m}", "--hw-rev", "A", "--trust-store", "{ts}"], 2, "--hw-rev needs --model"),
        (["trust", "revoke", "abc", "--trust-store", "{ts}"], 2, "not a key id"),
        (["trust", "add-key", "--trust-store", "{ts}"], 2, "exactly one of"),
        (["bundle", "frobnicate"], 2, "No such command"),
        (["keys", "generate", "--name", "x", "--role", "boss", "--out", "d"], 2, "Invalid value"),
    ],
)
def test_bad_input_is_one_clear_line(
    keyring: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected_code: int, text: str
) -> None:
    (keyring / "m.json").write_text(json.dumps(MANIFEST))
    filled = [a.format(ts=keyring / "ts.json", m=keyring / "m.json") for a in args]
    code, out, err = run(capsys, *filled)
    assert code == expected_code, err
    assert out == ""
    assert err.count("\n") == 1, err
    assert text in err
    assert "Traceback" not in err


def test_metrology_and_revocation_through_the_cli(keyring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["components"][0]["metrology_relevant"] = True
    bundle = _create(keyring, capsys, manifest)
    store = ["--trust-store", str(keyring / "ts.json")]
    run(capsys, "bundle", "sign", str(bundle), "--key", str(keyring / "k/rel.key"))
    assert "metrology" in run(capsys, "bundle", "verify", str(bundle), *store)[2]
    run(capsys, "bundle", "sign", str(bundle), "--key", str(keyring / "k/met.key"))
    assert run(capsys, "bundle", "verify", str(bundle), *store)[0] == 0
    rel_id = next(line.split()[-1] for line in (keyring / "k/rel.pub").read_text().splitlines() if "key-id" in line)
    assert (
        run(
            capsys,
            "trust",
            "revoke",
            rel_id,
            *store,
            "--signing-key",
            str(keyring / "k/root.key"),
            "--passphrase-file",
            str(keyring / "pass"),
        )[0]
        == 0
    )
    code, _, err = run(capsys, "bundle", "verify", str(bundle), *store)
    assert code == 3 and "revoked" in err
    code, out, _ = run(capsys, "trust", "show", *store, "--json")
    assert json.loads(out)["revoked_key_ids"] == [rel_id]


def test_trust_update_through_the_cli(keyring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = keyring / "ts.json"
    copy = keyring / "copy.json"
    copy.write_bytes(store.read_bytes())
    older = keyring / "older.json"
    older.write_bytes(store.read_bytes())
    signing = ["--signing-key", str(keyring / "k/root.key"), "--passphrase-file", str(keyring / "pass")]
    (keyring / "k2").mkdir()
    run(
        capsys, "keys", "generate", "--name", "rel2", "--role", "release", "--out", str(keyring / "k2"), "--unencrypted"
    )
    assert (
        run(
            capsys,
            "trust",
            "add-key",
            "--trust-store",
            str(copy),
            "--public-key",
            str(keyring / "k2/rel2.pub"),
            *signing,
        )[0]
        == 0
    )
    assert run(capsys, "trust", "update", str(copy), "--trust-store", str(store))[0] == 0
    code, _, err = run(capsys, "trust", "update", str(older), "--trust-store", str(store))
    assert code == 4 and "not newer" in err


def test_the_installed_program_runs_and_import_stays_light() -> None:
    exe = Path(sys.executable).with_name("fieldkit")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith(f"fieldkit {fieldkit.__version__}\ntrust store: ")
    probe = (
        "import sys, fieldkit, fieldkit.bundles.verify, fieldkit.cli.main; "
        "heavy = {'textual', 'paramiko', 'usb', 'serial'} & set(sys.modules); print(sorted(heavy))"
    )
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )


def test_version_names_the_trust_store_by_version_and_fingerprint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyring: Path
) -> None:
    """A support call's first question: which fieldkit, and which trust store does this laptop trust?"""
    from fieldkit.bundles.truststore import load_trust_store
    from fieldkit.config import Limits, default_trust_store_path

    monkeypatch.setenv("FIELDKIT_HOME", str(tmp_path / "laptop"))
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.splitlines() == [
        f"fieldkit {fieldkit.__version__}",
        f"trust store: none at {default_trust_store_path()} (install one with `fieldkit trust update`)",
    ]
    default_trust_store_path().parent.mkdir(parents=True)
    shutil.copyfile(keyring / "ts.json", default_trust_store_path())
    store = load_trust_store(default_trust_store_path(), Limits(), dt.datetime.now(dt.UTC))
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert (
        out.splitlines()[1]
        == f"trust store: version {store.version}, {store.fingerprint} ({default_trust_store_path()})"
    )
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", store.fingerprint)
    default_trust_store_path().write_text('{"signed": {}}')
    code, out, _ = run(capsys, "--version")
    assert code == 0 and "cannot be used" in out.splitlines()[1]


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from fieldkit.errors import TrustStoreError

    (tmp_path / "x").write_bytes(b"not a bundle")
    with pytest.raises(TrustStoreError):
        main(["--debug", "bundle", "verify", str(tmp_path / "x"), "--trust-store", str(tmp_path / "none.json")])


def test_thresholds_can_be_set_from_the_cli(keyring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """M-of-N from the command line: this ended in a NameError (exit 70) before."""
    store = ["--trust-store", str(keyring / "ts.json")]
    signing = ["--signing-key", str(keyring / "k/root.key"), "--passphrase-file", str(keyring / "pass")]
    code, _, err = run(capsys, "trust", "add-key", *store, "--public-key", str(keyring / "k/rel.pub"), *signing,
                       "--threshold", "release=2")  # fmt: skip
    assert code == 0, err
    code, out, err = run(capsys, "trust", "show", *store)
    assert code == 0, err
    assert "release=2" in out


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda path: path.unlink(), "is missing"),
        (lambda path: path.write_text('{"last_trusted_time": "2026-01-01T00:00:00"}'), "timezone"),
        (lambda path: path.write_text('{"last_trusted_time": "0001-01-01T00:00:00Z"}'), "outside 1970..9000"),
        (lambda path: path.write_bytes(b"\xff\x00"), "is unreadable"),
    ],
)
def test_a_lost_trusted_state_is_a_loud_warning_saying_what_it_means(
    keyring: Path, capsys: pytest.CaptureFixture[str], damage: Any, said: str
) -> None:
    """Deleting trusted-state.json re-opens trust-store rollback and expired bundles with the clock set back."""
    from fieldkit import config
    from fieldkit.bundles.clock import STATE_NAME

    bundle = _create(keyring, capsys)
    run(capsys, "bundle", "sign", str(bundle), "--key", str(keyring / "k/rel.key"))
    config.default_trust_store_path().parent.mkdir(parents=True, exist_ok=True)
    config.default_trust_store_path().write_bytes((keyring / "ts.json").read_bytes())
    state = config.data_dir() / STATE_NAME
    assert run(capsys, "bundle", "verify", str(bundle))[0] == 0
    assert run(capsys, "bundle", "verify", str(bundle))[2] == "", "no warning while the state is intact"
    damage(state)
    code, _, err = run(capsys, "bundle", "verify", str(bundle))
    assert code == 0, "the technician can still work"
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and said in warning[0] and "clock set back" in warning[0], err


def test_inspect_shows_a_bundle_that_fails_and_exits_3(keyring: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bundle inspect` of a truncated or expired bundle exited 0: a script took it for a good one."""
    expired = _create(keyring, capsys, {**MANIFEST, "expires_at": "2026-02-01T00:00:00Z"})
    run(capsys, "bundle", "sign", str(expired), "--key", str(keyring / "k/rel.key"))
    code, out, err = run(capsys, "bundle", "inspect", str(expired), "--trust-store", str(keyring / "ts.json"))
    assert code == 3 and "expired" in err and err.count("\n") == 1
    assert "VQ-AC22" in out, "what can be shown is shown: the manifest is authenticated, only expired"
    truncated = keyring / "truncated.fwbundle"
    truncated.write_bytes(expired.read_bytes()[:2000])
    code, _, err = run(capsys, "bundle", "inspect", str(truncated), "--trust-store", str(keyring / "ts.json"))
    assert code == 3 and err.startswith("fieldkit: error: ")
    code, _, err = run(capsys, "bundle", "inspect", str(keyring / "missing.fwbundle"))
    assert code == 2 and "does not exist" in err
