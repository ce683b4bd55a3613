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

The trail knows its head apart from its segments: ``head.json`` holds the
last entry's sequence number and hash, signed by the laptop key, rewritten
after each append. A deleted tail, a deleted last segment or an emptied one
then shows as entries missing below the head (and below what the back office
acknowledged), and new entries continue after the recorded head: sequence
numbers are never reused, and the chain still links to the lost entries, so
the back office sees no gap of its own. A segment that cannot be read is
reported by ``verify`` and skipped by readers; if it is the one being
written, it is set aside as ``*.damaged`` (kept for inspection) and appends go on.
"""

from __future__ import annotations

import base64
import binascii
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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from tinydb import TinyDB

from fieldkit import config
from fieldkit.audit.entry import (
    GENESIS_HASH,
    BundleRef,
    ChargerRef,
    ClockTrust,
    bound_device_responses,
    canonical_json,
    entry_hash,
    sign_entry,
    signature_valid,
)
from fieldkit.audit.identity import Profile
from fieldkit.audit.storage import MAX_SEGMENT_BYTES, AtomicJSONStorage
from fieldkit.errors import FieldkitError, UsageError
from fieldkit.fsutil import atomic_write_bytes, read_regular_file
from fieldkit.safejson import parse_bounded

SEGMENT_ENTRIES: Final = 128
SYNC_STATE: Final = "sync-state.json"
HEAD_RECORD: Final = "head.json"
HEAD_CONTEXT: Final = b"fieldkit.audit.head.v1\x00"
MAX_STATE_BYTES: Final = 64 * 1024


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
class HeadRecord:
    """The last entry's sequence number and hash, signed by the laptop key (``head.json``)."""

    laptop_id: str
    seq: int
    hash: str
    signature: str

    @staticmethod
    def message(laptop_id: str, seq: int, hash_: str) -> bytes:
        return HEAD_CONTEXT + canonical_json({"laptop_id": laptop_id, "seq": seq, "hash": hash_})

    def signed_by(self, public_key: ed25519.Ed25519PublicKey) -> bool:
        try:
            public_key.verify(
                base64.b64decode(self.signature, validate=True), self.message(self.laptop_id, self.seq, self.hash)
            )
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True


def _is_count(value: object) -> bool:
    """A JSON integer >= 0 (``true`` is an int to Python, not to JSON)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _well_formed(entry: dict[str, Any]) -> bool:
    """Has the fields every reader indexes (an altered entry may not): ``verify`` names what is wrong."""
    time, technician = entry.get("time"), entry.get("technician")
    return (
        isinstance(time, dict)
        and isinstance(time.get("wall_utc"), str)
        and isinstance(time.get("clock_trust"), str)
        and isinstance(technician, dict)
        and isinstance(technician.get("id"), str)
        and all(isinstance(entry.get(key), str) for key in ("id", "action", "laptop_id"))
        and isinstance(entry.get("charger") or {}, dict)
        and isinstance(entry.get("bundle") or {}, dict)
    )


class DamagedSegmentError(AuditStoreError):
    """A segment file that is not a readable TinyDB document of entries."""


@dataclass(frozen=True)
class ChainReport:
    """Result of checking the whole chain: ok, or the first broken entry; warnings that do not break it."""

    count: int
    broken_seq: int | None = None
    reason: str = ""
    warnings: tuple[str, ...] = ()

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
        self.damaged: list[str] = []  # damaged segments met while reading, one message each
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
        """The entries of one segment by seq; DamagedSegmentError if it is not a TinyDB file of entries."""
        path = self.segment_path(index)
        try:
            document = parse_bounded(
                read_regular_file(path, MAX_SEGMENT_BYTES), MAX_SEGMENT_BYTES, 16, signed_entries=True
            )
        except FileNotFoundError:
            return []
        except (OSError, ValueError, UsageError) as exc:  # JsonShapeError is a ValueError
            raise self._damaged(path, str(exc)) from exc
        tables = document.get("_default") if isinstance(document, dict) else None
        if not isinstance(tables, dict) or not all(isinstance(e, dict) for e in tables.values()):
            raise self._damaged(path, "it is not a table of entries")
        entries = list(tables.values())
        if not all(_is_count(e.get("seq")) for e in entries):
            raise self._damaged(path, "an entry has no sequence number")
        return sorted(entries, key=lambda e: int(e["seq"]))

    @staticmethod
    def _damaged(path: Path, why: str) -> DamagedSegmentError:
        return DamagedSegmentError(
            f"audit segment {path.name} is damaged: {why}",
            "keep a copy of the audit directory and report it to the back office; the other segments still count",
        )

    def _find_head(self) -> None:
        for index in reversed(self.segment_indexes()):
            try:
                entries = self._read_segment(index)
            except DamagedSegmentError:
                continue  # the head record (or an older segment) says where the trail stands
            if entries:
                last = entries[-1]
                self.head_seq, self.head_hash = int(last["seq"]), entry_hash(last)
                break
        record = self.head_record()
        head_path = self.directory / HEAD_RECORD
        if record is None and self.writable and head_path.exists():
            # Unreadable: set it aside as evidence (verify keeps reporting it); the next append writes a new one.
            head_path.replace(head_path.with_name(f"{HEAD_RECORD}.damaged-{int(time.time())}"))
        if record is not None and record.seq > self.head_seq:
            # The tail is gone (deleted, emptied or damaged): continue after it, never reuse its numbers.
            self.head_seq, self.head_hash = record.seq, record.hash
        state = self.sync_state()
        if state["acked_seq"] > self.head_seq:
            # Entries the back office holds are gone with the head record: continue after them all the same.
            acked_hash = state.get("acked_hash")
            self.head_seq = state["acked_seq"]
            self.head_hash = acked_hash if isinstance(acked_hash, str) else GENESIS_HASH
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
            try:
                self._read_segment(index)
            except DamagedSegmentError:
                # Never write into (and so overwrite) a damaged segment: keep it aside for inspection.
                damaged = self.segment_path(index)
                damaged.replace(damaged.with_name(f"{damaged.name}.damaged-{int(time.time())}"))
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
        self._write_head(private_key, profile.laptop_id)
        if seq % self.segment_entries == 0:
            self._active_db(index).close()
            self._active = None
            self._seal(index)
        return signed

    # -- reading ---------------------------------------------------------------

    def entries(self, after_seq: int = 0, strict: bool = False) -> Iterator[dict[str, Any]]:
        """Entries after ``after_seq`` in order. A damaged segment is skipped (listed in ``damaged``),
        or with ``strict`` raises DamagedSegmentError."""
        first = self._segment_of(after_seq + 1) if after_seq >= 0 else 1
        for index in self.segment_indexes():
            if index < first:
                continue
            try:
                segment = self._read_segment(index)
            except DamagedSegmentError as exc:
                if strict:
                    raise
                if exc.message not in self.damaged:
                    self.damaged.append(exc.message)
                continue
            for entry in segment:
                if int(entry["seq"]) <= after_seq:
                    continue
                if not strict and not _well_formed(entry):
                    self.damaged.append(f"audit entry {entry['seq']} is malformed")
                    continue
                yield entry

    # -- the head record -------------------------------------------------------

    def head_record(self) -> HeadRecord | None:
        """The recorded head, or None if there is none (or it cannot be read: ``verify`` says which)."""
        try:
            raw = parse_bounded(read_regular_file(self.directory / HEAD_RECORD, MAX_STATE_BYTES), MAX_STATE_BYTES, 2)
            record = HeadRecord(**raw)
        except (OSError, ValueError, TypeError, UsageError):
            return None
        if not (
            _is_count(record.seq) and all(isinstance(v, str) for v in (record.laptop_id, record.hash, record.signature))
        ):
            return None
        return record

    def _write_head(self, private_key: ed25519.Ed25519PrivateKey, laptop_id: str) -> None:
        signature = private_key.sign(HeadRecord.message(laptop_id, self.head_seq, self.head_hash))
        record = {"laptop_id": laptop_id, "seq": self.head_seq, "hash": self.head_hash,
                  "signature": base64.b64encode(signature).decode("ascii")}  # fmt: skip
        atomic_write_bytes(self.directory / HEAD_RECORD, json.dumps(record).encode())

    def _head_problem(self, public_key: ed25519.Ed25519PublicKey, laptop_id: str, last_seq: int, last_hash: str) -> str:
        """Why the recorded head disagrees with the last entry found, or "" if it agrees (or there is none)."""
        path = self.directory / HEAD_RECORD
        record = self.head_record()
        set_aside = sorted(self.directory.glob(f"{HEAD_RECORD}.damaged-*"))
        if set_aside:
            return f"the head record was unreadable (kept as {set_aside[-1].name}): a deleted tail cannot be ruled out"
        if record is None:
            return f"{HEAD_RECORD} is unreadable" if path.exists() else ""
        if record.laptop_id != laptop_id or not record.signed_by(public_key):
            return f"{HEAD_RECORD} is not signed by this laptop's key"
        if record.seq > last_seq:
            first = last_seq + 1
            missing = f"entry {first} is" if first == record.seq else f"entries {first} to {record.seq} are"
            return (
                f"{missing} missing: the trail's head record says it reached {record.seq} (a deleted or emptied tail)"
            )
        if record.seq == last_seq and record.hash != last_hash:
            return f"entry {last_seq} differs from the one the head record names"
        return ""

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
            for entry in self.entries(after_seq=after[0], strict=True):
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
        last_seq = expected_seq - 1
        problem = self._head_problem(public_key, laptop_id, last_seq, expected_prev)
        if problem:
            return ChainReport(count, last_seq + 1, problem)
        acked = int(self.sync_state()["acked_seq"])
        if acked > last_seq:
            reason = f"the back office acknowledged entries up to {acked}, but the trail ends at {last_seq}"
            return ChainReport(count, last_seq + 1, reason)
        warnings: tuple[str, ...] = ()
        if last_seq > 0 and not (self.directory / HEAD_RECORD).exists():
            warnings = (f"no {HEAD_RECORD} (a trail written before fieldkit kept one): a deleted tail cannot be "
                        "ruled out until the next entry is recorded",)  # fmt: skip
        return ChainReport(count, warnings=warnings)

    # -- sync bookkeeping ------------------------------------------------------

    def sync_state(self) -> dict[str, Any]:
        try:
            raw = parse_bounded(read_regular_file(self.directory / SYNC_STATE, MAX_STATE_BYTES), MAX_STATE_BYTES, 4)
        except (OSError, ValueError, UsageError):
            raw = None
        state: dict[str, Any] = raw if isinstance(raw, dict) else {}
        acked = state.get("acked_seq")
        state["acked_seq"] = acked if _is_count(acked) else 0
        return state

    def record_sync(self, acked_seq: int, error: str | None = None) -> None:
        state = self.sync_state()
        state["acked_seq"] = acked_seq
        acked_hash = self._hash_of(acked_seq)
        if acked_hash is not None:
            state["acked_hash"] = acked_hash
        state["last_attempt_at"] = dt.datetime.now(dt.UTC).isoformat()
        if error is None:
            state["last_success_at"] = state["last_attempt_at"]
            state.pop("last_error", None)
        else:
            state["last_error"] = error
        atomic_write_bytes(self.directory / SYNC_STATE, json.dumps(state, indent=2).encode())

    def _hash_of(self, seq: int) -> str | None:
        if seq == self.head_seq:
            return self.head_hash
        if seq == 0:
            return GENESIS_HASH
        try:
            found = self.find(str(seq))
        except AuditStoreError:
            return None
        return entry_hash(found) if found is not None else None

    @property
    def pending_count(self) -> int:
        return max(0, self.head_seq - int(self.sync_state()["acked_seq"]))
