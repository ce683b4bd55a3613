"""`fieldkit identity` and `fieldkit audit` through the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from fieldkit.cli.main import main


@pytest.fixture
def identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    secret = tmp_path / "passphrase"
    secret.write_text("a long passphrase\n")
    assert (
        main(
            [
                "identity",
                "init",
                "--technician-id",
                "T-17",
                "--name",
                "Ana Lima",
                "--site",
                "Depot 4",
                "--passphrase-file",
                str(secret),
            ]
        )
        == 0
    )
    monkeypatch.setenv("FIELDKIT_PASSPHRASE_FILE", str(secret))
    capsys.readouterr()
    return tmp_path


def test_refusals_and_trust_changes_are_audited(identity: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo = identity / "demo"
    main(["demo", "init", "--dir", str(demo), "--payload-size", "1024"])
    expired = str(demo / "demo-vq-ac22-2.2.0-EXPIRED.fwbundle")
    assert main(["bundle", "verify", expired, "--trust-store", str(demo / "trust-store.json")]) == 3
    capsys.readouterr()
    assert main(["audit", "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["action"] for e in entries] == ["bundle.refused"]
    entry = entries[0]
    assert entry["technician"] == {"id": "T-17", "name": "Ana Lima"}
    assert entry["site"] == "Depot 4"
    assert entry["error"].startswith("freshness/expired")
    assert main(["audit", "show", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == entry["id"]
    assert main(["audit", "show", entry["id"][:8]]) == 0
    capsys.readouterr()
    assert main(["audit", "export", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["action"] == "bundle.refused" and rows[0]["bundle_id"] == "demo-vq-ac22-2.2.0"
    assert main(["audit", "verify"]) == 0
    assert "1 entries" in capsys.readouterr().out


def test_no_secret_reaches_the_audit_trail(identity: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo = identity / "demo"
    main(["demo", "init", "--dir", str(demo), "--payload-size", "1024"])
    main(
        [
            "bundle",
            "verify",
            str(demo / "demo-vq-ac22-1.9.0-DOWNGRADE.fwbundle"),
            "--trust-store",
            str(demo / "trust-store.json"),
            "--installed-security-version",
            "3",
        ]
    )
    store_text = "".join(p.read_text() for p in (identity / "fieldkit-home" / "data" / "audit").glob("segment-*"))
    assert "a long passphrase" not in store_text
    assert "PRIVATE KEY" not in store_text


def test_audit_without_identity_or_credential_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["audit", "verify"]) == 5
    assert "no fieldkit identity" in capsys.readouterr().err
    assert main(["audit", "sync", "--once", "--credential", str(tmp_path / "missing.json")]) == 7
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no back-office credential" in err
    assert main(["audit", "show", "99"]) == 2


def test_identity_init_keeps_the_key_when_the_technician_changes(
    identity: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["identity", "show", "--json"])
    before = json.loads(capsys.readouterr().out)
    assert main(["identity", "init", "--technician-id", "T-18", "--name", "Bo Chen"]) == 0
    assert "updated profile" in capsys.readouterr().out
    main(["identity", "show", "--json"])
    after = json.loads(capsys.readouterr().out)
    assert after["laptop_id"] == before["laptop_id"]
    assert after["technician"] == {"id": "T-18", "name": "Bo Chen"}


def test_wrong_identity_passphrase_warns_instead_of_recording(
    identity: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = identity / "wrong"
    wrong.write_text("not the passphrase\n")
    monkeypatch.setenv("FIELDKIT_PASSPHRASE_FILE", str(wrong))
    demo = identity / "demo"
    main(["demo", "init", "--dir", str(demo), "--payload-size", "1024"])
    capsys.readouterr()
    main(
        [
            "bundle",
            "verify",
            str(demo / "demo-vq-ac22-2.2.0-EXPIRED.fwbundle"),
            "--trust-store",
            str(demo / "trust-store.json"),
        ]
    )
    err = capsys.readouterr().err
    assert "warning: audit entry for bundle.refused not recorded" in err and "wrong passphrase" in err


def test_a_refusal_longer_than_an_entry_allows_is_still_recorded(
    identity: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its message carries outside text (here a 3,000-character model name); the entry keeps a marked cut."""
    demo = identity / "demo"
    main(["demo", "init", "--dir", str(demo), "--payload-size", "1024"])
    bundle = str(demo / "demo-vq-ac22-2.4.0.fwbundle")
    model = "M" * 3000
    code = main(["bundle", "verify", bundle, "--trust-store", str(demo / "trust-store.json"), "--model", model,
                 "--hw-rev", "C"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 3, err
    assert "internal error" not in err and "not recorded" not in err
    assert main(["audit", "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["action"] for e in entries] == ["bundle.refused"]
    assert len(entries[0]["error"]) == 2000 and "characters in all]" in entries[0]["error"]


def test_csv_export_never_hands_a_spreadsheet_a_formula(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("a long passphrase\n")
    site = '=HYPERLINK("http://198.51.100.7/x","open")'
    init = ["identity", "init", "--technician-id", "T-1", "--name", "@SUM(A1)", "--site", site]
    assert main([*init, "--passphrase-file", str(secret)]) == 0
    monkeypatch.setenv("FIELDKIT_PASSPHRASE_FILE", str(secret))
    demo = tmp_path / "demo"
    main(["demo", "init", "--dir", str(demo), "--payload-size", "1024"])
    main(["bundle", "verify", str(demo / "demo-vq-ac22-2.2.0-EXPIRED.fwbundle"), "--trust-store",
          str(demo / "trust-store.json")])  # fmt: skip
    capsys.readouterr()
    assert main(["audit", "export", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["site"] == "'" + site, "shown as text, not run as a formula"
    assert all(not value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())
