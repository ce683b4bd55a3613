"""The release tools that need no build: udev rules, the offline vulnerability check, the frozen entry point."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"fieldkit_packaging_{name}", PACKAGING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# -- udev rules ------------------------------------------------------------------------------------------

UDEV_TERM = re.compile(r'^(?:[A-Z_]+(?:\{[A-Za-z_]+\})?)(?:==|!=|=|\+=|:=)"[^"]*"$')


def _rules() -> list[str]:
    text = (PACKAGING / "udev" / "70-fieldkit.rules").read_text()
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_udev_rule_is_well_formed() -> None:
    """Debian 12's udevadm cannot verify rules (no `udevadm verify` before systemd 254): check the grammar here."""
    for rule in _rules():
        terms = [term.strip() for term in rule.split(", ")]
        assert all(UDEV_TERM.match(term) for term in terms), rule
        assert any("==" in t for t in terms) and any(re.match(r"(MODE|GROUP|TAG\+)=", t) for t in terms), rule


@pytest.mark.parametrize(
    ("what", "vendor", "product"),
    [("FTDI", "0403", "6001"), ("CP210x", "10c4", "ea60"), ("CH340", "1a86", "7523"), ("PL2303", "067b", "2303"),
     ("STM32 DFU", "0483", "df11")],
)  # fmt: skip
def test_the_common_adapters_and_bootloaders_are_covered(what: str, vendor: str, product: str) -> None:
    matching = [r for r in _rules() if f'ATTRS{{idVendor}}=="{vendor}"' in r]
    assert any(product in r for r in matching), what
    assert all('GROUP="dialout"' in r for r in matching)


# -- offline vulnerability check -------------------------------------------------------------------------


def _sbom(tmp_path: Path, components: dict[str, str]) -> Path:
    path = tmp_path / "sbom.cdx.json"
    document = {"bomFormat": "CycloneDX", "components": [{"name": n, "version": v} for n, v in components.items()]}
    path.write_text(json.dumps(document))
    return path


def _osv(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / "PyPI-all.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


def _advisory(ident: str, package: str, events: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    affected = {"package": {"ecosystem": "PyPI", "name": package}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
    return {"id": ident, "summary": f"{ident} summary", "affected": [affected], **extra}


def test_vulncheck_names_what_is_affected_and_passes_what_is_fixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vulncheck = _load("vulncheck")
    sbom = _sbom(tmp_path, {"Paramiko": "3.4.0", "click": "8.1.7", "rich": "13.7.0", "textual": "0.80.0"})
    database = _osv(tmp_path, [
        _advisory("PYSEC-1", "paramiko", [{"introduced": "0"}, {"fixed": "3.4.1"}], aliases=["CVE-2099-1"]),
        _advisory("PYSEC-2", "click", [{"introduced": "0"}, {"fixed": "8.1.7"}]),  # fixed in what we run
        _advisory("PYSEC-3", "rich", [{"introduced": "13.0"}, {"last_affected": "13.7.0"}]),
        _advisory("PYSEC-4", "textual", [{"introduced": "0"}, {"fixed": "0.50"}]),
        _advisory("PYSEC-5", "paramiko", [{"introduced": "0"}], withdrawn="2099-01-01T00:00:00Z"),
    ])  # fmt: skip
    code = vulncheck.main(["--sbom", str(sbom), "--osv-db", str(database)])
    out = capsys.readouterr().out
    assert code == 1
    assert "paramiko 3.4.0: PYSEC-1 (CVE-2099-1); fixed in 3.4.1" in out
    assert "rich 13.7.0: PYSEC-3" in out
    assert "PYSEC-2" not in out and "PYSEC-4" not in out and "PYSEC-5" not in out
    assert "4 components checked against 5 advisories: 2 known vulnerabilities" in out


def test_vulncheck_passes_a_clean_sbom_and_refuses_what_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vulncheck = _load("vulncheck")
    sbom = _sbom(tmp_path, {"click": "8.2.0"})
    clean = _osv(tmp_path, [_advisory("PYSEC-9", "click", [{"introduced": "0"}, {"fixed": "8.1.7"}])])
    assert vulncheck.main(["--sbom", str(sbom), "--osv-db", str(clean)]) == 0
    not_zip = tmp_path / "db.txt"
    not_zip.write_text("advisories")
    assert vulncheck.main(["--sbom", str(sbom), "--osv-db", str(not_zip)]) == 2
    assert vulncheck.main(["--sbom", str(not_zip), "--osv-db", str(clean)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") for e in errors)


# -- the frozen program's entry point and libusb -----------------------------------------------------------


def test_the_frozen_entry_runs_only_fieldkits_own_modules() -> None:
    entry = str(PACKAGING / "fieldkit_entry.py")
    refused = subprocess.run([sys.executable, entry, "-m", "http.server"], capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "only fieldkit's own modules" in refused.stderr
    ran = subprocess.run([sys.executable, entry, "-m", "fieldkit", "--help"], capture_output=True, text=True,
                         check=False)  # fmt: skip
    assert ran.returncode == 0 and "offline firmware updates" in ran.stdout


def test_libusb_comes_from_libusb_package_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no system libusb; its build carries the libusb-package wheel, which pyusb would not find."""
    from fieldkit.transports import usb_control

    backend = object()
    assert usb_control._backend_or_default(backend) is backend
    monkeypatch.setitem(sys.modules, "libusb_package", None)  # not installed: pyusb finds the system's
    assert usb_control._backend_or_default(None) is None
    wheel = types.SimpleNamespace(get_libusb1_backend=lambda: "libusb from the wheel")
    monkeypatch.setitem(sys.modules, "libusb_package", wheel)
    assert usb_control._backend_or_default(None) == "libusb from the wheel"
