"""`fieldkit demo` and `fieldkit bundle import-ocpp` through the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from fieldkit.cli.main import main
from tests.support.bundle_lab import BundleLab, pem


def test_demo_init_is_reproducible_and_checks_as_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "init", "--dir", str(tmp_path / "a"), "--payload-size", "4096"]) == 0
    assert main(["demo", "init", "--dir", str(tmp_path / "b"), "--payload-size", "4096"]) == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    assert len([f for f in files_a if f.suffix == ".fwbundle"]) >= 6
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    capsys.readouterr()
    assert main(["demo", "check", "--dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    for name, verdict in (
        ("EXPIRED", "expired"),
        ("DOWNGRADE", "downgrade"),
        ("OTHER-MODEL", "wrong-model"),
        ("UNAPPROVED", "metrology-signature-missing"),
    ):
        line = next(line for line in out.splitlines() if name in line)
        assert verdict in line, line
    assert out.count("VALID ") >= 4
    assert "UNEXPECTED" not in out
    (tmp_path / "a" / "demo-vq-ac22-2.4.0.fwbundle").write_bytes(b"broken")
    assert main(["demo", "check", "--dir", str(tmp_path / "a")]) == 1
    assert "UNEXPECTED" in capsys.readouterr().out


def test_demo_store_is_marked_demo_and_its_keys_are_labelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["demo", "init", "--dir", str(tmp_path), "--payload-size", "1024"])
    store = json.loads((tmp_path / "trust-store.json").read_text())
    assert store["signed"]["demo"] is True
    assert all("DEMO" in k["name"] for k in store["signed"]["keys"])
    assert "fieldkit-key-label: demo" in (tmp_path / "keys/demo-release.key").read_text()


def test_import_ocpp_wraps_and_verifies(lab: BundleLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(b"OEM FIRMWARE" * 5000)
    digest = hashlib.sha256(firmware.read_bytes()).digest()
    signature = lab.ocpp_leaf_key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    (tmp_path / "fw.sig").write_text(base64.b64encode(signature).decode())
    (tmp_path / "fw.crt").write_text(pem(lab.ocpp_leaf))
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "rel.key").write_bytes(
        lab.release.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    out = tmp_path / "ocpp.fwbundle"
    import_argv = [
        "bundle",
        "import-ocpp",
        "--firmware",
        str(firmware),
        "--signature",
        str(tmp_path / "fw.sig"),
        "--certificate",
        str(tmp_path / "fw.crt"),
        "--vendor",
        "Voltiq",
        "--model",
        "VQ-AC22",
        "--hw-rev",
        "C",
        "--version",
        "3.0.0",
        "--security-version",
        "6",
        "--out",
        str(out),
        "--key",
        str(tmp_path / "rel.key"),
    ]
    code = main(import_argv)
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["bundle", "verify", str(out), "--trust-store", str(lab.store_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {c["check"]: c["status"] for c in report["checks"]}["ocpp-signatures"] == "passed"
    # The same firmware with someone else's signature is refused before it reaches a charger.
    (tmp_path / "fw.sig").write_bytes(signature[:-1] + bytes([signature[-1] ^ 1]))
    assert main(import_argv) == 0
    capsys.readouterr()
    assert main(["bundle", "verify", str(out), "--trust-store", str(lab.store_path)]) == 3
    assert "ocpp" in capsys.readouterr().err.lower()
