"""The job journal: every transition is on disk before the step it names begins.

One JSON file per job under fieldkit's data directory (``jobs/``), replaced
atomically, so a laptop that crashes, runs flat or is closed mid-update
finds exactly where each job stood.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from pydantic import JsonValue, TypeAdapter, ValidationError

from fieldkit import config
from fieldkit.errors import FieldkitError, UsageError
from fieldkit.fsutil import atomic_write_bytes, read_regular_file
from fieldkit.safejson import parse_bounded
from fieldkit.updates.states import TERMINAL, JobState, allowed

MAX_JOURNAL_BYTES: Final = 4 * 1024 * 1024  # a job with every transition and device answer fits many times


class JournalError(FieldkitError):
    exit_code = 12


def jobs_dir() -> Path:
    return config.data_dir() / "jobs"


__all__ = ["JobRecord", "Journal", "JournalError", "JsonValue", "StepChanges", "jobs_dir", "new_job_id"]


def new_job_id() -> str:
    """Sortable by start time, unique without coordination."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


@dataclass(kw_only=True)
class JobRecord:
    job_id: str = field(default_factory=new_job_id)
    charger_address: str
    charger_serial: str
    bundle_path: str
    bundle_id: str
    components: list[str]
    from_versions: dict[str, str | None]
    to_versions: dict[str, str]
    charger_vendor: str = ""
    charger_model: str = ""
    charger_hardware_revision: str = ""
    # How to reach the charger again, by its driver's options (e.g. {"ssh_key": PATH}); never a secret itself.
    link_options: dict[str, str] = field(default_factory=dict)
    # The install method chosen per component for the driver the job runs on (chosen again on a hand-over).
    install_methods: dict[str, str] = field(default_factory=dict)
    trust_store: str | None = None  # the store the job was verified with: a resume verifies with it again
    baseline_meter_wh: int = 0  # the meter register before the update: it must never go back
    state: str = JobState.PLANNED.value
    component_index: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    error: str | None = None
    history: list[dict[str, JsonValue]] = field(default_factory=list)

    @property
    def current(self) -> JobState:
        return JobState(self.state)

    @property
    def finished(self) -> bool:
        return self.current in TERMINAL


class Journal:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or jobs_dir()

    def path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.json"

    def create(self, record: JobRecord) -> JobRecord:
        """Journal a new job (Planned) before anything is done for it."""
        record.history.append({"state": record.state, "at": dt.datetime.now(dt.UTC).isoformat()})
        self.save(record)
        return record

    def save(self, record: JobRecord) -> None:
        atomic_write_bytes(self.path(record.job_id), json.dumps(asdict(record), indent=2).encode())

    def transition(
        self,
        record: JobRecord,
        target: JobState,
        history_extra: Mapping[str, JsonValue] | None = None,
        changes: StepChanges | None = None,
    ) -> None:
        """Journal ``target`` (refusing transitions the table does not allow), then let the step act."""
        if not allowed(record.current, target):
            raise JournalError(f"job {record.job_id}: {record.state} -> {target.value} is not a valid transition")
        record.state = target.value
        if changes is not None:
            changes.apply_to(record)
        component = record.components[min(record.component_index, len(record.components) - 1)]
        self.annotate(record, {"component": component, **(history_extra or {})})

    def annotate(self, record: JobRecord, entry: Mapping[str, JsonValue]) -> None:
        """Save ``record`` with a history entry at its current state (a transition's, or an event within one)."""
        record.history.append({"state": record.state, "at": dt.datetime.now(dt.UTC).isoformat(), **entry})
        self.save(record)

    def load(self, job_id: str) -> JobRecord:
        try:
            return _read_record(read_regular_file(self.path(job_id), MAX_JOURNAL_BYTES))
        except FileNotFoundError as exc:
            raise UsageError(f"no job {job_id!r}", "see `fieldkit update --resume` for interrupted jobs") from exc
        except (OSError, ValueError, TypeError) as exc:
            raise JournalError(f"the journal of job {job_id} is unreadable: {exc}") from exc

    def unfinished(self) -> list[JobRecord]:
        records = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                record = _read_record(read_regular_file(path, MAX_JOURNAL_BYTES))
            except (OSError, ValueError, TypeError, UsageError):  # not a journal fieldkit can read: not offered
                continue
            if not record.finished:
                records.append(record)
        return records


@dataclass(frozen=True)
class StepChanges:
    """What a transition changes in the record besides its state (None: unchanged)."""

    error: str | None = None
    bytes_total: int | None = None
    component_index: int | None = None

    def apply_to(self, record: JobRecord) -> None:
        if self.error is not None:
            record.error = self.error
        if self.bytes_total is not None:
            record.bytes_total = self.bytes_total
        if self.component_index is not None:
            record.component_index = self.component_index


_RECORD: Final = TypeAdapter(JobRecord)


def _read_record(data: bytes) -> JobRecord:
    """A journal file as a JobRecord, every field checked (a ValueError names what is wrong)."""
    document = parse_bounded(data, MAX_JOURNAL_BYTES, 16)
    if not isinstance(document, dict):
        raise ValueError("a job journal is a JSON object")
    try:
        return _RECORD.validate_python(_migrated(document))
    except ValidationError as exc:  # one line, naming the field: the error is shown as it is
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in first['loc']) or 'record'}: {first['msg']}") from exc


def _migrated(document: dict[str, object]) -> dict[str, object]:
    """A journal written by an earlier fieldkit, in today's shape (it kept the SSH key path as its own field)."""
    if "ssh_key" in document:
        key = document.pop("ssh_key")
        options = document.get("link_options")
        if isinstance(key, str) and key:
            merged = dict(options) if isinstance(options, dict) else {}
            merged.setdefault("ssh_key", key)
            document["link_options"] = merged
    return document
