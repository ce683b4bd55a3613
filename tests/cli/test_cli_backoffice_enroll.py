"""`fieldkit backoffice enroll-laptop`: a second enrollment never cuts a laptop off silently; URLs and names bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldkit.backoffice.db import Credential, make_engine, session_factory
from fieldkit.backoffice.ingest import token_digest
from fieldkit.cli.main import main


@pytest.fixture
def laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    (tmp_path / "pass").write_text("a long passphrase\n")
    monkeypatch.setenv("FIELDKIT_PASSPHRASE_FILE", str(tmp_path / "pass"))
    assert main(["identity", "init", "--technician-id", "T-1", "--name", "Ana"]) == 0
    capsys.readouterr()
    return next(Path(tmp_path).rglob("laptop.pub"))


def _enroll(
    tmp_path: Path, public_key: Path, *extra: str, url: str = "https://bo.example.com", name: str = "lap-1"
) -> int:
    db = f"sqlite:///{tmp_path / 'bo.db'}"
    out = tmp_path / f"cred-{len(list(tmp_path.glob('cred-*')))}.json"
    return main(["backoffice", "enroll-laptop", "--db", db, "--public-key", str(public_key), "--name", name,
                 "--url", url, "--out", str(out), *extra])  # fmt: skip


def _token_valid(tmp_path: Path, credential: Path) -> bool:
    token = json.loads(credential.read_text())["token"]
    with session_factory(make_engine(f"sqlite:///{tmp_path / 'bo.db'}"))() as session:
        row = session.get(Credential, token_digest(token))
        return row is not None and not row.revoked


def test_enrolling_again_keeps_the_credential_unless_reissue_is_asked(
    laptop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _enroll(tmp_path, laptop) == 0
    first = tmp_path / "cred-0.json"
    capsys.readouterr()
    assert _enroll(tmp_path, laptop) == 2
    err = capsys.readouterr().err
    assert "already enrolled" in err and "--reissue" in err and err.count("\n") == 1
    assert _token_valid(tmp_path, first), "a refused enrollment must not touch the working credential"
    assert _enroll(tmp_path, laptop, "--reissue") == 0
    second = sorted(tmp_path.glob("cred-*.json"))[-1]
    assert not _token_valid(tmp_path, first) and _token_valid(tmp_path, second)


@pytest.mark.parametrize(
    ("url", "name", "reason"),
    [
        ("ftp://bo.example.com", "lap", "not an https:// URL"),
        ("file:///etc/passwd", "lap", "not an https:// URL"),
        ("https://", "lap", "not an https:// URL"),
        ("http://bo.example.com", "lap", "plain HTTP to another machine"),
        ("https://bo.example.com:99999", "lap", "is not a URL"),
        ("https://bo.example.com", "x" * 129, "1 to 128 printable characters"),
        ("https://bo.example.com", "tab\there", "1 to 128 printable characters"),
    ],
)
def test_enrollment_refuses_what_a_laptop_could_not_use(
    laptop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, name: str, reason: str
) -> None:
    assert _enroll(tmp_path, laptop, url=url, name=name) == 2
    err = capsys.readouterr().err
    assert reason in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.glob("cred-*.json")), "no credential is written for a refused enrollment"
