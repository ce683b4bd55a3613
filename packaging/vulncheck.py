"""Offline dependency vulnerability check: a CycloneDX SBOM against an OSV database file.

    python packaging/vulncheck.py --sbom dist/fieldkit-VERSION-linux-x86_64.cdx.json --osv-db PyPI-all.zip

The release engineer brings the database: OSV's export of every PyPI advisory, one ZIP of OSV JSON records
(the "PyPI/all.zip" file of OSV's public data dumps), fetched on a machine with network and copied over.
Exit 0: no known vulnerability in any component; 1: some (each listed); 2: bad input.

Why not pip-audit: it asks the PyPI or OSV web service for each package and has no way to read a local
database, and the build machine is offline. OSV's record format is an open schema (ossf.github.io/osv-schema);
this reads its ECOSYSTEM ranges and explicit version lists, which is how PyPI advisories are expressed.
The ZIP is read member by member, bounded, never extracted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

MAX_RECORD_BYTES = 4 * 1024 * 1024  # an OSV record is a few KB; one this big is not a record
MAX_RECORDS = 500_000
MAX_SBOM_BYTES = 16 * 1024 * 1024


class BadInput(Exception):
    pass


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    summary: str
    fixed_in: tuple[str, ...]


def normalized(name: str) -> str:
    """PEP 503: `PyYAML`, `pyyaml` and `py_yaml` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_sbom(path: Path) -> dict[str, str]:
    """Project name -> version, for every component of a CycloneDX JSON SBOM."""
    try:
        if path.stat().st_size > MAX_SBOM_BYTES:
            raise BadInput(f"{path} is larger than {MAX_SBOM_BYTES} bytes: not an SBOM of one program")
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read the SBOM {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise BadInput(f"{path} is not a CycloneDX JSON SBOM (no bomFormat CycloneDX)")
    components = document.get("components") or []
    return {
        normalized(str(c["name"])): str(c["version"])
        for c in components
        if isinstance(c, dict) and "name" in c and "version" in c
    }


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict[str, str]]) -> bool:
    """OSV ECOSYSTEM range semantics: events in version order switch 'affected' on (introduced) and off
    (fixed, or past last_affected)."""
    ordered: list[tuple[Version, str]] = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event:
                bound = Version("0") if event[kind] == "0" else _version(event[kind])
                if bound is not None:
                    ordered.append((bound, kind))
    affected = False
    for bound, kind in sorted(ordered, key=lambda pair: pair[0]):
        if kind == "introduced" and version >= bound:
            affected = True
        elif (kind == "fixed" and version >= bound) or (kind == "last_affected" and version > bound):
            affected = False
    return affected


def findings_in(record: dict[str, Any], installed: dict[str, str]) -> list[Finding]:
    if record.get("withdrawn"):
        return []
    found = []
    for affected in record.get("affected") or []:
        package = affected.get("package") or {}
        if package.get("ecosystem") != "PyPI":
            continue
        name = normalized(str(package.get("name", "")))
        if name not in installed:
            continue
        text = installed[name]
        version = _version(text)
        listed = text in (affected.get("versions") or [])
        ranges = [r for r in affected.get("ranges") or [] if r.get("type") == "ECOSYSTEM"]
        in_range = version is not None and any(_in_range(version, r.get("events") or []) for r in ranges)
        if listed or in_range:
            fixed = tuple(e["fixed"] for r in ranges for e in r.get("events") or [] if "fixed" in e)
            aliases = tuple(str(a) for a in record.get("aliases") or [])
            summary = str(record.get("summary") or "")
            found.append(Finding(name, text, str(record.get("id")), aliases, summary, fixed))
    return found


def scan(database: Path, installed: dict[str, str]) -> tuple[int, list[Finding]]:
    """(records read, findings) for the OSV ZIP ``database``."""
    try:
        archive = zipfile.ZipFile(database)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadInput(f"cannot read the OSV database {database}: {exc}") from exc
    findings: list[Finding] = []
    records = 0
    with archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.endswith(".json"):
                continue
            records += 1
            if records > MAX_RECORDS:
                raise BadInput(f"{database} holds more than {MAX_RECORDS} records: not an OSV export")
            if member.file_size > MAX_RECORD_BYTES:
                raise BadInput(f"{member.filename} in {database} is {member.file_size} bytes: not an OSV record")
            with archive.open(member) as stream:
                data = stream.read(MAX_RECORD_BYTES + 1)
            try:
                record = json.loads(data)
            except ValueError as exc:
                raise BadInput(f"{member.filename} in {database} is not JSON: {exc}") from exc
            if isinstance(record, dict):
                findings.extend(findings_in(record, installed))
    if records == 0:
        raise BadInput(f"{database} holds no OSV records (*.json): is it the PyPI export?")
    return records, findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sbom", type=Path, required=True, help="CycloneDX JSON SBOM (made by `make dist`)")
    parser.add_argument("--osv-db", type=Path, required=True, help="OSV export of PyPI advisories (ZIP)")
    args = parser.parse_args(argv)
    try:
        installed = read_sbom(args.sbom)
        records, findings = scan(args.osv_db, installed)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for f in sorted(findings, key=lambda f: (f.package, f.advisory)):
        also = f" ({', '.join(f.aliases)})" if f.aliases else ""
        fix = f"; fixed in {', '.join(f.fixed_in)}" if f.fixed_in else "; no fixed release"
        print(f"{f.package} {f.version}: {f.advisory}{also}{fix}: {f.summary}")
    print(f"{len(installed)} components checked against {records} advisories: {len(findings)} known vulnerabilities")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
