"""Audit-trail tampering table: each alteration of the files on disk is named by `verify`, and the rest keeps working.

A trail of 20 entries in segments of 8 (three segments, the last half full)
is altered on disk as someone with access to the laptop could; `verify` must
then report it broken, naming what happened, and the store must still open,
list what is readable and record a new entry, whose sequence number is never
one that was used before.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from fieldkit.audit.identity import Profile, init_identity, load_profile, unlock
from fieldkit.audit.store import HEAD_RECORD, SYNC_STATE, AuditStore

PASS = b"tamper-test-pass"
SEGMENT = 8
ENTRIES = 20


@dataclass
class Trail:
    directory: Path
    profile: Profile
    key: ed25519.Ed25519PrivateKey

    def open(self, writable: bool = True) -> AuditStore:
        return AuditStore(self.directory, segment_entries=SEGMENT, writable=writable)

    def append(self, store: AuditStore, action: str = "tamper.test") -> int:
        entry = store.append(
            self.key, self.profile, action, wall_utc=dt.datetime.now(dt.UTC), clock_trust="laptop-clock"
        )
        return int(entry["seq"])

    def segment(self, index: int) -> Path:
        return self.directory / f"segment-{index:06d}.json"

    def rewrite(self, index: int, change: Callable[[dict[str, dict[str, object]]], object]) -> None:
        path = self.segment(index)
        path.chmod(0o644)
        document = json.loads(path.read_text())
        change(document["_default"])
        path.write_text(json.dumps(document))

    def verify(self) -> tuple[bool, str, tuple[str, ...]]:
        with self.open(writable=False) as store:
            report = store.verify(self.profile.public_key(), self.profile.laptop_id)
        return report.ok, report.reason, report.warnings


@pytest.fixture
def trail(tmp_path: Path) -> Trail:
    init_identity("T-1", "Tamper Test", None, PASS, tmp_path / "identity")
    made = Trail(tmp_path / "audit", load_profile(tmp_path / "identity"), unlock(PASS, tmp_path / "identity"))
    with made.open() as store:
        for _ in range(ENTRIES):
            made.append(store)
    return made


def _drop_last(table: dict[str, dict[str, object]]) -> None:
    del table[max(table, key=int)]


def _edit_note(table: dict[str, dict[str, object]]) -> None:
    first = table[min(table, key=int)]
    first["note"] = "edited afterwards"


def _swap_two(table: dict[str, dict[str, object]]) -> None:
    a, b = sorted(table, key=int)[:2]
    table[a]["seq"], table[b]["seq"] = table[b]["seq"], table[a]["seq"]


def _drop_last_two(table: dict[str, dict[str, object]]) -> None:
    _drop_last(table)
    _drop_last(table)


def _delete_every_segment(t: Trail) -> None:
    for index in (1, 2, 3):
        t.segment(index).unlink()


def _delete_acknowledged_tail_and_head(t: Trail) -> None:
    (t.directory / SYNC_STATE).write_text(json.dumps({"acked_seq": 20}))
    t.segment(3).unlink()
    (t.directory / HEAD_RECORD).unlink()


TAMPERINGS: dict[str, tuple[Callable[[Trail], object], str]] = {
    "last entry deleted": (lambda t: t.rewrite(3, _drop_last), "entry 20 is missing"),
    "last two entries deleted": (lambda t: t.rewrite(3, _drop_last_two), "entries 19 to 20"),
    "last segment deleted": (lambda t: t.segment(3).unlink(), "entries 17 to 20 are missing"),
    "last segment emptied (no entries)": (
        lambda t: t.segment(3).write_text(json.dumps({"_default": {}})),
        "entries 17 to 20 are missing",
    ),
    "last segment truncated to 0 bytes": (lambda t: t.segment(3).write_bytes(b""), "segment-000003.json is damaged"),
    "last segment not JSON": (lambda t: t.segment(3).write_bytes(b"\x00garbage{"), "segment-000003.json is damaged"),
    "last segment a JSON list": (lambda t: t.segment(3).write_text("[]"), "segment-000003.json is damaged"),
    "entry without a sequence number": (
        lambda t: t.rewrite(2, lambda d: d[min(d, key=int)].pop("seq")),
        "segment-000002.json is damaged",
    ),
    "middle segment deleted": (lambda t: t.segment(2).unlink(), "entry 9 is missing"),
    "sealed segment edited": (lambda t: t.rewrite(1, _edit_note), "signature does not match"),
    "two entries swapped": (lambda t: t.rewrite(1, _swap_two), "prev_hash does not match"),
    "every segment deleted": (_delete_every_segment, "entries 1 to 20 are missing"),
    "head record forged ahead": (
        lambda t: (t.directory / HEAD_RECORD).write_text(
            json.dumps({**json.loads((t.directory / HEAD_RECORD).read_text()), "seq": 99})
        ),
        "not signed by this laptop",
    ),
    "head record garbage": (lambda t: (t.directory / HEAD_RECORD).write_text("{"), "head.json is unreadable"),
    "acknowledged entries deleted with the head record": (
        _delete_acknowledged_tail_and_head,
        "acknowledged entries up to 20, but the trail ends at 16",
    ),
}


def test_the_table_covers_the_reported_cases() -> None:
    assert len(TAMPERINGS) >= 15


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampering_is_named_and_the_trail_keeps_working(trail: Trail, name: str) -> None:
    assert trail.verify()[0], "the untouched trail must verify"
    tamper, reason = TAMPERINGS[name]
    tamper(trail)

    ok, found, _ = trail.verify()
    assert not ok, f"{name}: still verifies as intact"
    assert reason in found, f"{name}: {found}"

    # The rest of the tool keeps working: the store opens, lists what it can read, and records.
    with trail.open() as store:
        listed = [int(e["seq"]) for e in store.entries()]
        assert listed == sorted(set(listed))
        used = max([ENTRIES, *listed])
        new_seq = trail.append(store, "after.tampering")
    assert new_seq > min(used, ENTRIES) and new_seq not in listed, "a sequence number was used twice"
    if name != "head record forged ahead":
        assert new_seq == ENTRIES + 1, "new entries continue after the recorded head"
    assert not trail.verify()[0], f"{name}: recording more entries hid the tampering"


def test_a_damaged_segment_being_written_is_set_aside_not_overwritten(trail: Trail) -> None:
    trail.segment(3).write_bytes(b"\x00garbage{")
    with trail.open() as store:
        assert trail.append(store) == ENTRIES + 1
    kept = list(trail.directory.glob("segment-000003.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"\x00garbage{", "the damaged file is evidence: keep it"


def test_a_trail_from_before_head_records_verifies_with_a_warning(trail: Trail) -> None:
    (trail.directory / HEAD_RECORD).unlink()
    ok, _, warnings = trail.verify()
    assert ok and warnings and "deleted tail cannot be ruled out" in warnings[0]
    with trail.open() as store:
        trail.append(store)
    assert trail.verify() == (True, "", ())


def test_cli_verify_and_list_name_a_deleted_tail(
    trail: Trail, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldkit.cli.main import main

    monkeypatch.setattr("fieldkit.audit.store.audit_dir", lambda: trail.directory)
    monkeypatch.setattr("fieldkit.audit.identity.identity_dir", lambda: trail.directory.parent / "identity")
    monkeypatch.setattr("fieldkit.audit.store.SEGMENT_ENTRIES", SEGMENT)
    trail.segment(3).write_bytes(b"[1, 2")
    capsys.readouterr()
    assert main(["audit", "verify"]) != 0
    err = capsys.readouterr().err
    assert "segment-000003.json is damaged" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["audit", "list", "--limit", "100"]) == 0
    out, err = capsys.readouterr()
    assert "16" in out and "warning: audit segment segment-000003.json is damaged" in err
