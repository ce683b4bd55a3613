"""Rules the whole code base keeps, checked on the source itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "fieldkit"

FORBIDDEN = {
    "AutoAddPolicy": re.compile(r"(AutoAddPolicy|WarningPolicy)\s*\("),
    "TLS verification disabled": re.compile(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False"),
    "blind archive extraction": re.compile(r"\.extractall\(|\.extract\("),
    "shell=True": re.compile(r"shell\s*=\s*True"),
}


@pytest.mark.parametrize("rule", list(FORBIDDEN))
def test_no_source_file_breaks_the_rule(rule: str) -> None:
    offenders = [
        f"{path.relative_to(SOURCE.parent)}:{number}"
        for path in SOURCE.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN[rule].search(line) and not line.lstrip().startswith("#")
    ]
    assert not offenders, f"{rule}: {offenders}"


def test_the_rules_do_find_what_they_look_for() -> None:
    assert FORBIDDEN["AutoAddPolicy"].search("client.set_missing_host_key_policy(paramiko.AutoAddPolicy())")
    assert FORBIDDEN["TLS verification disabled"].search("httpx.Client(verify=False)")
