"""Fleet reports: who runs what, what failed, who touched it."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldkit import csvcells
from fieldkit.backoffice.db import Entry

# OCPP 2.0.1 FirmwareStatus names (and fieldkit's own) that end an update attempt.
SUCCESS: Final = frozenset({"Committed"})
FAILURE: Final = frozenset({"RolledBack", "InstallationFailed", "InstallVerificationFailed", "InvalidSignature"})


def _charger_rows(session: Session) -> dict[str, list[Entry]]:
    rows: dict[str, list[Entry]] = defaultdict(list)
    query = select(Entry).where(Entry.charger_serial.is_not(None)).order_by(Entry.wall_utc, Entry.laptop_id, Entry.seq)
    for entry in session.scalars(query):
        assert entry.charger_serial is not None
        rows[entry.charger_serial].append(entry)
    return rows


def chargers(session: Session) -> list[dict[str, Any]]:
    """Per charger: the version it runs (last committed update) and its history."""
    report = []
    for serial, history in sorted(_charger_rows(session).items()):
        committed = [e for e in history if e.status in SUCCESS and e.to_version]
        last = history[-1]
        report.append(
            {
                "serial": serial,
                "vendor": last.charger_vendor,
                "model": last.charger_model,
                "hardware_revision": last.hardware_revision,
                "site": last.site,
                "current_version": committed[-1].to_version if committed else None,
                "last_update_at": committed[-1].wall_utc.isoformat() if committed else None,
                "last_event": {
                    "action": last.action,
                    "status": last.status,
                    "at": last.wall_utc.isoformat(),
                    "technician": last.technician_id,
                },
                "history": [
                    {
                        "at": e.wall_utc.isoformat(),
                        "action": e.action,
                        "status": e.status,
                        "from_version": e.from_version,
                        "to_version": e.to_version,
                        "bundle_id": e.bundle_id,
                        "technician": e.technician_id,
                        "laptop": e.laptop_id,
                    }
                    for e in history
                ],
            }
        )
    return report


def bundles(session: Session) -> list[dict[str, Any]]:
    """Per bundle: finished update attempts and their success rate."""
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in session.scalars(select(Entry).where(Entry.bundle_id.is_not(None))):
        if entry.status in SUCCESS | FAILURE:
            assert entry.bundle_id is not None
            outcomes[entry.bundle_id][entry.status or ""] += 1
    report = []
    for bundle_id, counts in sorted(outcomes.items()):
        succeeded = sum(counts[s] for s in SUCCESS)
        failed = sum(counts[s] for s in FAILURE)
        report.append(
            {
                "bundle_id": bundle_id,
                "attempts": succeeded + failed,
                "succeeded": succeeded,
                "failed": failed,
                "success_rate": round(succeeded / (succeeded + failed), 4),
                "outcomes": dict(counts),
            }
        )
    return report


def fragmentation(session: Session) -> list[dict[str, Any]]:
    """Version distribution per model and site: how fragmented the fleet is."""
    groups: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for charger in chargers(session):
        key = (charger["model"] or "?", charger["site"] or "?")
        groups[key][charger["current_version"] or "unknown"] += 1
    return [
        {"model": model, "site": site, "chargers": sum(c.values()), "versions": dict(c), "distinct_versions": len(c)}
        for (model, site), c in sorted(groups.items())
    ]


def chargers_csv(session: Session) -> str:
    """The charger report flattened for tenders and spreadsheets."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "serial",
            "vendor",
            "model",
            "hardware_revision",
            "site",
            "current_version",
            "last_update_at",
            "last_action",
            "last_status",
            "last_technician",
        ]
    )
    for c in chargers(session):
        writer.writerow(
            csvcells.row(
                [
                    c["serial"],
                    c["vendor"],
                    c["model"],
                    c["hardware_revision"],
                    c["site"],
                    c["current_version"] or "",
                    c["last_update_at"] or "",
                    c["last_event"]["action"],
                    c["last_event"]["status"] or "",
                    c["last_event"]["technician"],
                ]
            )
        )
    return buffer.getvalue()
