"""One row per update, read back from the audit trail (which holds one entry per transition).

A job's transitions are consecutive `update.transition` entries for one
charger, from the first step to a terminal state (Committed, RolledBack,
Refused). A refusal at preflight (`update.refused`) and a rollback asked for
by hand (`rollback`) are rows of their own. A job whose last transition is
not terminal was interrupted: its row says where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fieldkit.updates.states import TERMINAL


@dataclass
class UpdateRow:
    serial: str
    model: str
    bundle_id: str
    from_version: str | None
    to_version: str | None
    started_at: str
    ended_at: str
    outcome: str  # Committed, RolledBack, Refused, or "interrupted in <state>"
    detail: str = ""
    entries: list[int] = field(default_factory=list)  # the audit entries it summarises

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _charger(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    charger = entry.get("charger")
    return charger if isinstance(charger, dict) else {}


def _row(entry: Mapping[str, Any], outcome: str) -> UpdateRow:
    charger, bundle = _charger(entry), entry.get("bundle") or {}
    wall = str((entry.get("time") or {}).get("wall_utc", ""))
    return UpdateRow(
        serial=str(charger.get("serial", "")),
        model=str(charger.get("model", "")),
        bundle_id=str(bundle.get("bundle_id", "")) if isinstance(bundle, dict) else "",
        from_version=entry.get("from_version"),
        to_version=entry.get("to_version"),
        started_at=wall,
        ended_at=wall,
        outcome=outcome,
        detail=str(entry.get("error") or entry.get("note") or ""),
        entries=[int(entry.get("seq", 0))],
    )


def update_history(entries: Iterable[Mapping[str, Any]], serial: str | None = None) -> list[UpdateRow]:
    """Rows in the order the updates began; ``serial`` keeps one charger's."""
    rows: list[UpdateRow] = []
    open_jobs: dict[str, UpdateRow] = {}  # serial -> the job whose transitions are being read
    for entry in entries:
        action, status = entry.get("action"), str(entry.get("status") or "")
        charger_serial = str(_charger(entry).get("serial", ""))
        if serial is not None and charger_serial != serial:
            continue
        if action in ("update.refused", "rollback"):
            rows.append(_row(entry, "Refused" if action == "update.refused" else "RolledBack (by hand)"))
            continue
        if action != "update.transition":
            continue
        job = open_jobs.get(charger_serial)
        if job is None or (job.bundle_id != str((entry.get("bundle") or {}).get("bundle_id", ""))):
            job = _row(entry, f"interrupted in {status}")
            open_jobs[charger_serial] = job
            rows.append(job)
        else:
            job.entries.append(int(entry.get("seq", 0)))
            job.ended_at = str((entry.get("time") or {}).get("wall_utc", job.ended_at))
            job.to_version = entry.get("to_version") or job.to_version
            job.from_version = job.from_version or entry.get("from_version")
        if entry.get("error"):
            job.detail = str(entry["error"])
        job.outcome = status if status in TERMINAL else f"interrupted in {status}"
        if status in TERMINAL:
            del open_jobs[charger_serial]
    return rows
