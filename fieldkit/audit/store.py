"""The laptop's audit store: a hash chain of signed entries in TinyDB segments.

Entry ``seq`` lives in segment ``(seq - 1) // segment_entries + 1``, so the
layout needs no index that could disagree with the data. Only the newest
segment is ever written; a full segment is made read-only (sealed) and never
opened for writing again, so an append costs the same with 100k entries of
history as with 10. Each write is atomic (storage.py): a crash at any moment
leaves every segment either before or after the append, and an append that
returned is on disk.

One writer at a time: the store holds an exclusive lock on ``audit.lock``
while open for writing. Readers need no lock.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519
from tinydb import TinyDB

from fieldkit import config
from fieldkit.audit.entry import (
    GENESIS_HASH,
    BundleRef,
    ChargerRef,
    ClockTrust,
    bound_device_responses,
    entry_hash,
    sign_entry,
    signature_valid,
)
from fieldkit.audit.identity import Profile
from fieldkit.audit.storage import AtomicJSONStorage
from fieldkit.errors import FieldkitError
from fieldkit.fsutil import atomic_write_bytes

SEGMENT_ENTRIES: Final = 128
SYNC_STATE: Final = "sync-state.json"


class AuditStoreError(FieldkitError):
    exit_code = 6


def audit_dir() -> Path:
    return config.data_dir() / "audit"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:64]
    except OSError:
        return "unknown"


@dataclass(frozen=True)
class ChainReport:
    """Result of checking the whole chain: ok, or the first broken entry."""

    count: int
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None and not self.reason


class AuditStore:
    def __init__(self, directory: Path, segment_entries: int = SEGMENT_ENTRIES, writable: bool = True) -> None:
        self.directory = directory
        self.segment_entries = segment_entries
        self.writable = writable
        self._lock_fd: int | None = None
        self._active: TinyDB | None = None
        self._active_index = 0
        self.head_seq = 0
        self.head_hash = GENESIS_HASH
        directory.mkdir(parents=True, exist_ok=True)
        if writable:
            self._lock()
            for stale in directory.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        self._find_head()

    @classmethod
    def open(cls, directory: Path | None = None, writable: bool = True) -> AuditStore:
        return cls(directory or audit_dir(), writable=writable)

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._active is not None:
            self._active.close()
            self._active = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- layout ----------------------------------------------------------------

    def _lock(self) -> None:
        fd = os.open(self.directory / "audit.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AuditStoreError(
                "the audit store is in use by another fieldkit process",
                "wait for it to finish, or close the other fieldkit",
            ) from exc
        self._lock_fd = fd

    def segment_path(self, index: int) -> Path:
        return self.directory / f"segment-{index:06d}.json"

    def segment_indexes(self) -> list[int]:
        indexes = []
        for path in self.directory.glob("segment-*.json"):
            try:
                indexes.append(int(path.stem.split("-")[1]))
            except (IndexError, ValueError):
                continue
        return sorted(indexes)

    def _segment_of(self, seq: int) -> int:
        return (seq - 1) // self.segment_entries + 1

    def _read_segment(self, index: int) -> list[dict[str, Any]]:
        path = self.segment_path(index)
        try:
            with TinyDB(path, storage=AtomicJSONStorage, read_only=True) as db:
                documents = [dict(d) for d in db.all()]
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AuditStoreError(
                f"audit segment {path.name} is not readable JSON: {exc}",
                "run `fieldkit audit verify`; restore the segment from a backup",
            ) from exc
        return sorted(documents, key=lambda d: d.get("seq", 0))

    def _find_head(self) -> None:
        for index in reversed(self.segment_indexes()):
            entries = self._read_segment(index)
            if entries:
                last = entries[-1]
                self.head_seq, self.head_hash = int(last["seq"]), entry_hash(last)
                break
        if self.writable:
            # A crash between filling a segment and sealing it leaves it writable: seal it now.
            for index in self.segment_indexes():
                if index < self._segment_of(self.head_seq + 1):
                    self._seal(index)

    def _seal(self, index: int) -> None:
        path = self.segment_path(index)
        if path.exists() and path.stat().st_mode & stat.S_IWUSR:
            path.chmod(0o444)

    def _active_db(self, index: int) -> TinyDB:
        if self._active is None or self._active_index != index:
            if self._active is not None:
                self._active.close()
            self._active = TinyDB(self.segment_path(index), storage=AtomicJSONStorage)
            self._active_index = index
        return self._active

    # -- writing ---------------------------------------------------------------

    def append(
        self,
        private_key: ed25519.Ed25519PrivateKey,
        profile: Profile,
        action: str,
        *,
        wall_utc: dt.datetime,
        clock_trust: ClockTrust,
        charger: ChargerRef | None = None,
        bundle: BundleRef | None = None,
        from_version: str | None = None,
        to_version: str | None = None,
        status: str | None = None,
        device_responses: list[str] | None = None,
        error: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Sign and durably store the next entry; returns it once it is on disk."""
        if not self.writable:
            raise AuditStoreError("the audit store was opened read-only")
        seq = self.head_seq + 1
        raw: dict[str, Any] = {
            "schema_version": 1,
            "id": str(uuid.uuid4()),
            "laptop_id": profile.laptop_id,
            "seq": seq,
            "prev_hash": self.head_hash,
            "time": {
                "wall_utc": wall_utc.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                "monotonic_us": time.monotonic_ns() // 1000,
                "boot_id": _boot_id(),
                "clock_trust": clock_trust,
            },
            "technician": profile.technician.model_dump(),
            "site": profile.site,
            "charger": charger.model_dump() if charger else None,
            "action": action,
            "bundle": bundle.model_dump() if bundle else None,
            "from_version": from_version,
            "to_version": to_version,
            "status": status,
            "device_responses": bound_device_responses(device_responses or []),
            "error": error,
            "note": note,
        }
        from fieldkit.audit.entry import AuditEntry

        signed = sign_entry(raw, private_key)
        AuditEntry.model_validate(signed)  # never store what the back office would refuse
        index = self._segment_of(seq)
        self._active_db(index).insert(signed)
        self.head_seq, self.head_hash = seq, entry_hash(signed)
        if seq % self.segment_entries == 0:
            self._active_db(index).close()
            self._active = None
            self._seal(index)
        return signed

    # -- reading ---------------------------------------------------------------

    def entries(self, after_seq: int = 0) -> Iterator[dict[str, Any]]:
        first = self._segment_of(after_seq + 1) if after_seq >= 0 else 1
        for index in self.segment_indexes():
            if index < first:
                continue
            for entry in self._read_segment(index):
                if int(entry.get("seq", 0)) > after_seq:
                    yield entry

    def find(self, key: str) -> dict[str, Any] | None:
        """An entry by sequence number or by (a prefix of) its id."""
        if key.isdigit():
            seq = int(key)
            if seq < 1:
                return None
            return next((e for e in self._read_segment(self._segment_of(seq)) if e.get("seq") == seq), None)
        return next((e for e in self.entries() if str(e.get("id", "")).startswith(key)), None)

    def verify(
        self,
        public_key: ed25519.Ed25519PublicKey,
        laptop_id: str,
        after: tuple[int, str] = (0, GENESIS_HASH),
    ) -> ChainReport:
        """Check sequence, hash links and signatures; name the first broken entry.

        ``after`` = (seq, hash) of an entry already verified: check only what
        follows it, and that it links to it.
        """
        expected_seq, expected_prev, count = after[0] + 1, after[1], 0
        try:
            for entry in self.entries(after_seq=after[0]):
                seq = entry.get("seq")
                if seq != expected_seq:
                    return ChainReport(count, expected_seq, f"entry {expected_seq} is missing (found {seq} instead)")
                if entry.get("laptop_id") != laptop_id:
                    return ChainReport(count, seq, "entry belongs to another laptop")
                if entry.get("prev_hash") != expected_prev:
                    return ChainReport(count, seq, "its prev_hash does not match the entry before it")
                if not signature_valid(entry, public_key):
                    return ChainReport(count, seq, "its signature does not match its content")
                expected_prev, expected_seq, count = entry_hash(entry), expected_seq + 1, count + 1
        except AuditStoreError as exc:
            return ChainReport(count, expected_seq, exc.message)
        return ChainReport(count)

    # -- sync bookkeeping ------------------------------------------------------

    def sync_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads((self.directory / SYNC_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        state.setdefault("acked_seq", 0)
        return state

    def record_sync(self, acked_seq: int, error: str | None = None) -> None:
        state = self.sync_state()
        state["acked_seq"] = acked_seq
        state["last_attempt_at"] = dt.datetime.now(dt.UTC).isoformat()
        if error is None:
            state["last_success_at"] = state["last_attempt_at"]
            state.pop("last_error", None)
        else:
            state["last_error"] = error
        atomic_write_bytes(self.directory / SYNC_STATE, json.dumps(state, indent=2).encode())

    @property
    def pending_count(self) -> int:
        return max(0, self.head_seq - int(self.sync_state()["acked_seq"]))
