"""Audit store and sync benchmarks (issue #4). Run with `make bench`.

- append latency p50/p99 with 1k, 10k and 100k entries of history (target:
  p99 < 20 ms at 100k and flat: p99 at 100k within 2x of p99 at 1k);
- sync throughput of 10k entries to a real back-office process over TLS on
  loopback, SQLite (target >= 2,000 entries/s) and PostgreSQL (when
  FIELDKIT_TEST_POSTGRES_URL is set).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tinydb import TinyDB

from fieldkit.audit.entry import GENESIS_HASH, entry_hash, sign_entry
from fieldkit.audit.identity import Profile, init_identity, load_profile, unlock
from fieldkit.audit.storage import AtomicJSONStorage
from fieldkit.audit.store import SEGMENT_ENTRIES, AuditStore
from fieldkit.audit.sync import BackofficeClient, Credential, sync_round
from fieldkit.backoffice.db import make_engine, session_factory, sqlite_url
from fieldkit.backoffice.ingest import enroll_laptop
from tests.support.backoffice import BackofficeProcess, make_tls, postgres_database

PASS = b"bench-pass-123"


def _fabricate_history(directory: Path, profile: Profile, key: Ed25519PrivateKey, count: int) -> None:
    """Write ``count`` valid, chained, signed entries straight into sealed segments (fast set-up)."""
    previous, seq = GENESIS_HASH, 0
    template = {
        "schema_version": 1,
        "laptop_id": profile.laptop_id,
        "time": {
            "wall_utc": "2026-11-24T08:00:00Z",
            "monotonic_us": 1,
            "boot_id": "bench",
            "clock_trust": "laptop-clock",
        },
        "technician": profile.technician.model_dump(),
        "site": None,
        "charger": None,
        "action": "bench.history",
        "bundle": None,
        "from_version": None,
        "to_version": None,
        "status": None,
        "device_responses": [],
        "error": None,
        "note": "h" * 120,
    }
    import uuid

    for first in range(1, count + 1, SEGMENT_ENTRIES):
        with TinyDB(
            directory / f"segment-{(first - 1) // SEGMENT_ENTRIES + 1:06d}.json", storage=AtomicJSONStorage
        ) as db:
            documents = []
            for seq in range(first, min(count, first + SEGMENT_ENTRIES - 1) + 1):
                raw = {**template, "id": str(uuid.uuid4()), "seq": seq, "prev_hash": previous}
                signed = sign_entry(raw, key)
                previous = entry_hash(signed)
                documents.append(signed)
            db.insert_multiple(documents)
    del seq


def _append_latencies(store: AuditStore, profile: Profile, key: Ed25519PrivateKey, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        store.append(
            key,
            profile,
            "bench.append",
            wall_utc=dt.datetime.now(dt.UTC),
            clock_trust="laptop-clock",
            note="a" * 120,
        )
        latencies.append(time.perf_counter() - start)
    return sorted(latencies)


def test_append_latency_is_flat_in_history(tmp_path: Path) -> None:
    init_identity("B-1", "Bench", None, PASS, tmp_path / "identity")
    profile, key = load_profile(tmp_path / "identity"), unlock(PASS, tmp_path / "identity")
    p99s = {}
    print()
    for history in (1_000, 10_000, 100_000):
        directory = tmp_path / f"audit-{history}"
        directory.mkdir()
        _fabricate_history(directory, profile, key, history)
        with AuditStore(directory) as store:
            assert store.head_seq == history
            latencies = _append_latencies(store, profile, key, 1000)
        p50, p99 = latencies[500] * 1e3, latencies[990] * 1e3
        p99s[history] = p99
        print(f"append with {history:>7,} entries of history: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    print(f"p99 ratio 100k/1k: {p99s[100_000] / p99s[1_000]:.2f} (target <= 2.0); p99 at 100k target < 20 ms")
    assert p99s[100_000] < 20.0
    assert p99s[100_000] <= 2.0 * max(p99s[1_000], 1.0)


def _sync_throughput(db_url: str, tmp_path: Path, label: str) -> float:
    home = tmp_path / f"home-{label}"
    identity = home / "identity"
    init_identity("B-1", "Bench", None, PASS, identity)
    profile, key = load_profile(identity), unlock(PASS, identity)
    audit = home / "audit"
    audit.mkdir(parents=True)
    _fabricate_history(audit, profile, key, 10_000)
    tls = make_tls(tmp_path / f"tls-{label}")
    server = BackofficeProcess(db_url, tls, {**os.environ, "FIELDKIT_HOME": str(tmp_path / f"srv-{label}")})
    server.start()
    try:
        token = enroll_laptop(session_factory(make_engine(db_url))(), (identity / "laptop.pub").read_bytes(), "bench")[
            1
        ]
        with (
            AuditStore(audit) as store,
            BackofficeClient(Credential(server.url, profile.laptop_id, token, tls[0])) as client,
        ):
            start = time.perf_counter()
            result = sync_round(store, client)
            elapsed = time.perf_counter() - start
        assert result.stored == 10_000
    finally:
        server.stop()
    rate = 10_000 / elapsed
    print(f"\nsync 10k entries over TLS to {label:<10}: {elapsed:6.2f} s = {rate:8.0f} entries/s")
    return rate


def test_sync_throughput_sqlite(tmp_path: Path) -> None:
    rate = _sync_throughput(sqlite_url(str(tmp_path / "bench.sqlite3")), tmp_path, "SQLite")
    print("target >= 2,000 entries/s")
    assert rate >= 2000


def test_sync_throughput_postgresql(tmp_path: Path) -> None:
    with postgres_database() as url:
        if url is None:
            pytest.skip("set FIELDKIT_TEST_POSTGRES_URL (scripts/start-test-postgres.sh) to measure PostgreSQL")
        _sync_throughput(url, tmp_path, "PostgreSQL")
