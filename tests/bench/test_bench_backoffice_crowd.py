"""The back office under a hostile crowd (issue #12). Run with `make bench`.

500 requests with invented bearer tokens and 200 with a real laptop token
stay in flight (each answered request replaced at once) while an honest
laptop syncs 10k entries over TLS on loopback, SQLite. Figures: the honest
sync's time against the same sync with no crowd, measured in the same run,
the slowest /health answer, and what the crowd was told. Targets: the sync
completes exactly once; /health answers within 1 s throughout.
"""

from __future__ import annotations

import os
import ssl
import time
from pathlib import Path

from fieldkit.audit.identity import init_identity, load_profile, unlock
from fieldkit.audit.store import AuditStore
from fieldkit.audit.sync import BackofficeClient, Credential, sync_with_retries
from fieldkit.backoffice.db import make_engine, session_factory, sqlite_url
from fieldkit.backoffice.ingest import enroll_laptop
from tests.bench.test_bench_audit import _fabricate_history
from tests.support.backoffice import BackofficeProcess, make_tls
from tests.support.crowd import Crowd

PASS = b"bench-pass-123"
ENTRIES = 10_000


def _sync(tmp_path: Path, label: str, crowd_size: tuple[int, int] | None) -> tuple[float, Crowd | None]:
    home = tmp_path / label
    identity = home / "identity"
    init_identity("B-1", "Bench", None, PASS, identity)
    profile, key = load_profile(identity), unlock(PASS, identity)
    (home / "audit").mkdir(parents=True)
    _fabricate_history(home / "audit", profile, key, ENTRIES)
    db_url = sqlite_url(str(home / "backoffice.sqlite3"))
    tls = make_tls(home / "tls")
    server = BackofficeProcess(db_url, tls, {**os.environ, "FIELDKIT_HOME": str(home / "server")})
    server.start()
    crowd: Crowd | None = None
    try:
        sessions = session_factory(make_engine(db_url))
        token = enroll_laptop(sessions(), (identity / "laptop.pub").read_bytes(), "bench")[1]
        if crowd_size is not None:
            crowd = Crowd(server.url, ssl.create_default_context(cafile=str(tls[0])), token, *crowd_size)
            crowd.start(max_s=600)
            deadline = time.monotonic() + 120
            while sum(crowd.report.statuses.values()) < 1000 or crowd.report.health_samples < 10:
                assert time.monotonic() < deadline, f"the crowd got no answers: {crowd.report}"
                time.sleep(0.05)
        with (
            AuditStore(home / "audit") as store,
            BackofficeClient(Credential(server.url, profile.laptop_id, token, tls[0])) as client,
        ):
            start = time.perf_counter()
            result = sync_with_retries(store, client, max_attempts=200, delay=lambda _attempt: 0.2)
            elapsed = time.perf_counter() - start
        assert result.pending == 0 and result.high_water_mark == ENTRIES
    finally:
        if crowd is not None:
            crowd.stop()
        server.stop()
    return elapsed, crowd


def test_honest_sync_and_health_under_a_hostile_crowd(tmp_path: Path) -> None:
    quiet_s, _ = _sync(tmp_path, "quiet", None)
    crowded_s, crowd = _sync(tmp_path, "crowded", (500, 200))
    assert crowd is not None
    report = crowd.report
    print(f"\nsync {ENTRIES:,} entries, no crowd: {quiet_s:6.2f} s; beside 500 strangers + 200 members: "
          f"{crowded_s:6.2f} s (ratio {crowded_s / quiet_s:.1f})")  # fmt: skip
    print(f"/health: {report.health_samples} samples, slowest {report.slowest_health_s * 1000:.0f} ms, "
          f"{report.health_failures} failed; the crowd was answered {dict(report.statuses)}")  # fmt: skip
    assert report.health_samples >= 10 and report.health_failures == 0 and report.slowest_health_s < 1.0
    # Members are told "done" or "busy, retry"; strangers "no" or "busy", or find the connection closed under
    # them (refused before their body was read). Nobody gets a server error.
    assert crowd.answered("member") <= {"200", "503"}
    assert crowd.answered("stranger") <= {"401", "503", "ReadError", "RemoteProtocolError", "WriteError"}
