"""Sync against a real back-office process on loopback, with faults, on SQLite and PostgreSQL.

Every test ends with the same proof: the back office holds every entry
exactly once, in sequence, and the chain it holds verifies (hash links and
signatures recomputed from what it stored).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fieldkit.audit.entry import GENESIS_HASH, BundleRef, ChargerRef, entry_hash, signature_valid
from fieldkit.audit.identity import Profile, init_identity, load_profile, unlock
from fieldkit.audit.store import AuditStore
from fieldkit.audit.sync import BackofficeClient, Credential, SyncError, sync_round, sync_with_retries
from fieldkit.audit.wire import MAX_BATCH_BYTES, BatchResponse, SyncRefusal
from fieldkit.backoffice.db import Entry, make_engine, session_factory, sqlite_url
from fieldkit.backoffice.ingest import create_operator, enroll_laptop
from tests.support.backoffice import (
    REQUIRE_POSTGRES_ENV,
    BackofficeProcess,
    make_tls,
    postgres_database,
)
from tests.support.crowd import Crowd
from tests.support.netfault import FaultyProxy

PASS = b"laptop-pass-123"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(str(tmp_path / "backoffice.sqlite3"))
        return
    with postgres_database() as url:
        if url is None:
            if os.environ.get(REQUIRE_POSTGRES_ENV):
                pytest.fail("PostgreSQL is required here but FIELDKIT_TEST_POSTGRES_URL is not set")
            pytest.skip("no PostgreSQL server configured (FIELDKIT_TEST_POSTGRES_URL)")
        yield url


@dataclasses.dataclass
class Laptop:
    home: Path
    profile: Profile
    store: AuditStore

    def append(self, count: int, **fields: Any) -> None:
        key = unlock(PASS)
        for _ in range(count):
            self.store.append(
                key,
                self.profile,
                "test.event",
                wall_utc=dt.datetime.now(dt.UTC),
                clock_trust="laptop-clock",
                note="n" * 200,
                **fields,
            )


@pytest.fixture
def laptop(fieldkit_home: Path) -> Iterator[Laptop]:
    init_identity("T-9", "Test Technician", "Depot 1", PASS)
    store = AuditStore.open()
    yield Laptop(fieldkit_home, load_profile(), store)
    store.close()


@pytest.fixture
def lab_for_laptop(lab: Any) -> Any:
    return lab


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_tls(tmp_path / "tls")


@pytest.fixture
def server(db_url: str, tls: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[BackofficeProcess]:
    process = BackofficeProcess(db_url, tls, {**os.environ, "FIELDKIT_HOME": str(tmp_path / "server-home")})
    process.start()
    yield process
    process.stop()


def _enroll(db_url: str, profile_home: Path) -> str:
    pub = (profile_home / "data" / "identity" / "laptop.pub").read_bytes()
    return enroll_laptop(session_factory(make_engine(db_url))(), pub, "test laptop")[1]


@pytest.fixture
def credential(server: BackofficeProcess, laptop: Laptop, db_url: str, tls: tuple[Path, Path, Path]) -> Credential:
    token = _enroll(db_url, laptop.home)
    return Credential(server.url, laptop.profile.laptop_id, token, tls[0])


def assert_exactly_once(db_url: str, laptop: Laptop) -> None:
    expected = laptop.store.head_seq
    with session_factory(make_engine(db_url))() as session:
        rows = list(
            session.scalars(select(Entry).where(Entry.laptop_id == laptop.profile.laptop_id).order_by(Entry.seq))
        )
    assert [r.seq for r in rows] == list(range(1, expected + 1))
    assert len({r.entry_id for r in rows}) == expected
    previous = GENESIS_HASH
    public_key = laptop.profile.public_key()
    for row in rows:
        raw = json.loads(row.raw_json)
        assert raw["prev_hash"] == previous == row.prev_hash
        assert entry_hash(raw) == row.entry_hash
        assert signature_valid(raw, public_key)
        previous = row.entry_hash


def _stored_count(db_url: str) -> int:
    with session_factory(make_engine(db_url))() as session:
        return len(list(session.scalars(select(Entry.seq))))


def test_tls_sync_delivers_every_entry_exactly_once(laptop: Laptop, credential: Credential, db_url: str) -> None:
    laptop.append(1200)
    with BackofficeClient(credential) as client:
        result = sync_with_retries(laptop.store, client, max_attempts=1)
        assert (result.stored, result.high_water_mark, result.pending) == (1200, 1200, 0)
        assert sync_round(laptop.store, client).stored == 0  # nothing is sent twice
    assert laptop.store.sync_state()["acked_seq"] == 1200
    assert_exactly_once(db_url, laptop)


def test_server_killed_mid_request(
    laptop: Laptop, credential: Credential, server: BackofficeProcess, db_url: str
) -> None:
    laptop.append(1000)
    proxy = FaultyProxy(server.port)
    proxy.rate_bytes_per_s = 150_000  # a 500-entry batch takes ~3 s to send
    slow = dataclasses.replace(credential, backoffice_url=f"https://127.0.0.1:{proxy.port}")
    try:
        with BackofficeClient(slow, timeout_s=10) as client:
            killer = _after(0.8, server.kill)
            with pytest.raises(SyncError):
                sync_round(laptop.store, client, batch_entries=500)
            killer.join()
        assert _stored_count(db_url) % 500 == 0, "a batch is all or nothing"
        server.start()
        proxy.rate_bytes_per_s = None
        with BackofficeClient(slow) as client:
            assert sync_with_retries(laptop.store, client, max_attempts=3).high_water_mark == 1000
    finally:
        proxy.close()
    assert_exactly_once(db_url, laptop)


def test_response_lost_after_the_server_committed(
    laptop: Laptop, credential: Credential, server: BackofficeProcess, db_url: str
) -> None:
    laptop.append(700)
    proxy = FaultyProxy(server.port)
    proxy.drop_next_batch_response = True
    lossy = dataclasses.replace(credential, backoffice_url=f"https://127.0.0.1:{proxy.port}")
    try:
        with BackofficeClient(lossy) as client:
            with pytest.raises(SyncError):
                sync_round(laptop.store, client, batch_entries=500)
            assert proxy.dropped_responses == 1
            assert _stored_count(db_url) == 500, "the server committed the batch whose answer was lost"
            # Resending the very same batch is harmless...
            first_batch = list(laptop.store.entries())[:500]
            answer = client.send(first_batch)
            assert isinstance(answer, BatchResponse)
            assert (answer.replayed, answer.stored, answer.high_water_mark) == (True, 0, 500)
            # ...and the next round resumes from the server's mark.
            assert sync_round(laptop.store, client).stored == 200
    finally:
        proxy.close()
    assert_exactly_once(db_url, laptop)


def test_duplicate_overlapping_and_out_of_order_batches(laptop: Laptop, credential: Credential, db_url: str) -> None:
    laptop.append(900)
    entries = list(laptop.store.entries())
    with BackofficeClient(credential) as client:
        early = client.send(entries[500:800])
        assert isinstance(early, SyncRefusal)
        assert (early.code, early.high_water_mark) == ("gap", 0)
        assert _stored_count(db_url) == 0
        first = client.send(entries[:500])
        assert isinstance(first, BatchResponse) and first.stored == 500
        again = client.send(entries[:500])
        assert isinstance(again, BatchResponse) and again.replayed and again.stored == 0
        overlap = client.send(entries[250:650])
        assert isinstance(overlap, BatchResponse)
        assert (overlap.duplicates, overlap.stored, overlap.high_water_mark) == (250, 150, 650)
        late = client.send(entries[500:800])
        assert isinstance(late, BatchResponse) and (late.duplicates, late.stored) == (150, 150)
        assert sync_round(laptop.store, client).stored == 100
    assert_exactly_once(db_url, laptop)


def test_laptop_killed_mid_sync(
    laptop: Laptop, credential: Credential, server: BackofficeProcess, db_url: str, tmp_path: Path
) -> None:
    laptop.append(1500)
    laptop.store.close()  # the sync process takes the store's lock
    proxy = FaultyProxy(server.port)
    proxy.rate_bytes_per_s = 150_000
    credential_file = tmp_path / "credential.json"
    credential_file.write_text(
        json.dumps(
            {
                "backoffice_url": f"https://127.0.0.1:{proxy.port}",
                "laptop_id": credential.laptop_id,
                "token": credential.token,
                "ca_cert": str(credential.ca_cert),
            }
        )
    )
    try:
        sync = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("fieldkit")),
                "audit",
                "sync",
                "--once",
                "--credential",
                str(credential_file),
            ],
            env={**os.environ, "FIELDKIT_HOME": str(laptop.home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while _stored_count(db_url) == 0 and time.monotonic() < deadline:  # first batch landed: mid-sync
            time.sleep(0.05)
        assert sync.poll() is None, "the sync finished before it could be killed; slow the link further"
        sync.send_signal(signal.SIGKILL)
        sync.wait(timeout=10)
        assert 0 < _stored_count(db_url) < 1500
        proxy.rate_bytes_per_s = None
        laptop.store = AuditStore.open()
        with BackofficeClient(credential) as client:
            assert sync_with_retries(laptop.store, client, max_attempts=3).high_water_mark == 1500
    finally:
        proxy.close()
    assert_exactly_once(db_url, laptop)


def test_a_tampered_entry_is_flagged_locally_and_refused_by_the_server(
    laptop: Laptop, credential: Credential, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fieldkit.cli.main import main

    laptop.append(20)
    segment = laptop.store.segment_path(1)
    data = segment.read_bytes()
    position = data.index(b'"note":"nnn') + len(b'"note":"')
    segment.write_bytes(data[:position] + b"N" + data[position + 1 :])  # one byte
    laptop.store.close()
    assert main(["audit", "verify"]) != 0
    assert "broken at entry 1" in capsys.readouterr().err
    laptop.store = AuditStore.open()
    with BackofficeClient(credential) as client, pytest.raises(SyncError, match="bad-signature"):
        sync_round(laptop.store, client)
    assert _stored_count(db_url) == 0


def test_strangers_get_401_and_403_and_store_nothing(
    laptop: Laptop, credential: Credential, db_url: str, server: BackofficeProcess, tls: tuple[Path, Path, Path]
) -> None:
    laptop.append(5)
    entries = list(laptop.store.entries())
    body = {"laptop_id": laptop.profile.laptop_id, "batch_id": "0" * 32, "entries": entries}
    url = f"{server.url}/api/v1/sync/batches"
    verify = ssl.create_default_context(cafile=str(tls[0]))
    assert httpx.post(url, json=body, verify=verify).status_code == 401
    assert httpx.post(url, json=body, verify=verify, headers={"Authorization": "Bearer fk1_nope"}).status_code == 401
    other = {**body, "laptop_id": "laptop-0000000000000000"}
    auth = {"Authorization": f"Bearer {credential.token}"}
    assert httpx.post(url, json=other, verify=verify, headers=auth).status_code == 403
    operator = create_operator(session_factory(make_engine(db_url))(), "ops")
    assert httpx.post(url, json=body, verify=verify, headers={"Authorization": f"Bearer {operator}"}).status_code == 403
    assert httpx.get(f"{server.url}/api/v1/reports/chargers", verify=verify, headers=auth).status_code == 403
    assert _stored_count(db_url) == 0


def test_reports_answer_who_runs_what(
    laptop: Laptop, credential: Credential, db_url: str, server: BackofficeProcess, tls: tuple[Path, Path, Path]
) -> None:
    def charger(serial: str, model: str = "VQ-AC22") -> ChargerRef:
        return ChargerRef(vendor="Voltiq", model=model, hardware_revision="C", serial=serial)

    bundle = BundleRef(bundle_id="vq-ac22-2.5.0", version="2.5.0")
    laptop.append(
        1, charger=charger("SN1"), bundle=bundle, from_version="2.3.0", to_version="2.5.0", status="Committed"
    )
    laptop.append(
        1, charger=charger("SN2"), bundle=bundle, from_version="2.3.0", to_version="2.5.0", status="RolledBack"
    )
    laptop.append(
        1,
        charger=charger("SN3", "VQ-DC150"),
        bundle=BundleRef(bundle_id="dc-4.2.0"),
        from_version="4.1.0",
        to_version="4.2.0",
        status="Committed",
    )
    with BackofficeClient(credential) as client:
        sync_round(laptop.store, client)
    token = create_operator(session_factory(make_engine(db_url))(), "ops")
    headers, verify = {"Authorization": f"Bearer {token}"}, ssl.create_default_context(cafile=str(tls[0]))
    chargers = httpx.get(f"{server.url}/api/v1/reports/chargers", headers=headers, verify=verify).json()
    assert {c["serial"]: c["current_version"] for c in chargers} == {"SN1": "2.5.0", "SN2": None, "SN3": "4.2.0"}
    bundles = {
        b["bundle_id"]: b
        for b in httpx.get(f"{server.url}/api/v1/reports/bundles", headers=headers, verify=verify).json()
    }
    assert bundles["vq-ac22-2.5.0"]["success_rate"] == 0.5
    fragmentation = httpx.get(f"{server.url}/api/v1/reports/fragmentation", headers=headers, verify=verify).json()
    assert {(f["model"], f["distinct_versions"]) for f in fragmentation} == {("VQ-AC22", 2), ("VQ-DC150", 1)}
    csv_text = httpx.get(f"{server.url}/api/v1/reports/chargers.csv", headers=headers, verify=verify).text
    assert csv_text.splitlines()[0].startswith("serial,vendor,model") and "SN3" in csv_text
    docs = httpx.get(f"{server.url}/openapi.json", verify=verify).json()
    assert "/api/v1/sync/batches" in docs["paths"]


def test_the_client_verifies_the_server_certificate(laptop: Laptop, credential: Credential) -> None:
    laptop.append(1)
    untrusting = dataclasses.replace(credential, ca_cert=None)  # system CAs do not know the test CA
    with BackofficeClient(untrusting) as client, pytest.raises(SyncError, match=r"(?i)certificate"):
        sync_round(laptop.store, client)
    with pytest.raises(SyncError, match="plain HTTP"):
        BackofficeClient(dataclasses.replace(credential, backoffice_url="http://backoffice.example:8443"))


def _after(seconds: float, action: Any) -> Any:
    import threading

    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_sync_pulls_trust_store_and_work_orders(
    laptop: Laptop,
    credential: Credential,
    db_url: str,
    tmp_path: Path,
    lab_for_laptop: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fieldkit.backoffice.ingest import publish_trust_store, publish_work_order
    from fieldkit.bundles.truststore import build_store
    from fieldkit.bundles.workorder import WorkOrderBody, sign_work_order
    from fieldkit.cli.main import main
    from fieldkit.config import default_trust_store_path

    lab = lab_for_laptop
    default_trust_store_path().parent.mkdir(parents=True, exist_ok=True)
    default_trust_store_path().write_bytes(lab.store_path.read_bytes())
    sessions = session_factory(make_engine(db_url))
    publish_trust_store(sessions(), build_store(lab.store_body.model_copy(update={"version": 2}), [lab.root]))
    now = dt.datetime.now(dt.UTC)
    order = WorkOrderBody(
        type="fieldkit-work-order",
        schema_version=1,
        id="WO-7",
        issued_at=now,
        vendor="Voltiq",
        charger_serials=["SN1"],
        bundle_id="vq-ac22-2.5.0",
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=1),
    )
    publish_work_order(sessions(), sign_work_order(order, [lab.dispatch]))
    forged = order.model_copy(update={"id": "WO-8"})
    publish_work_order(sessions(), sign_work_order(forged, [lab.unknown]))
    laptop.append(3)
    laptop.store.close()
    credential_file = tmp_path / "credential.json"
    credential_file.write_text(json.dumps(dataclasses.asdict(credential), default=str))
    os.environ["FIELDKIT_PASSPHRASE_FILE"] = str(tmp_path / "pass")
    (tmp_path / "pass").write_bytes(PASS + b"\n")
    try:
        assert main(["audit", "sync", "--once", "--credential", str(credential_file)]) == 0
    finally:
        del os.environ["FIELDKIT_PASSPHRASE_FILE"]
    captured = capsys.readouterr()
    assert "trust store updated to version 2" in captured.out
    assert "1 work order(s) installed" in captured.out
    assert "a work order was refused" in captured.err
    assert main(["workorder", "check", "--charger", "SN1", "--bundle-id", "vq-ac22-2.5.0"]) == 0
    assert main(["workorder", "check", "--charger", "SN1", "--bundle-id", "other-1.0"]) == 8
    laptop.store = AuditStore.open(writable=False)
    actions = [e["action"] for e in laptop.store.entries()]
    assert "trust.update" in actions  # the pulled trust store is itself an audited change


def test_unreachable_back_office_backs_off_with_growing_jittered_delays(
    laptop: Laptop, capsys: pytest.CaptureFixture[str]
) -> None:
    import random

    from fieldkit.audit.sync import backoff_delays
    from fieldkit.cli.main import main
    from tests.support.backoffice import free_port

    laptop.append(3)
    closed = Credential(f"http://127.0.0.1:{free_port()}", laptop.profile.laptop_id, "fk1_x", None)
    slept: list[float] = []
    delay = backoff_delays(base_s=0.5, cap_s=4.0, rng=random.Random(1))
    with BackofficeClient(closed, timeout_s=2) as client, pytest.raises(SyncError, match="not reachable"):
        sync_with_retries(laptop.store, client, max_attempts=6, delay=delay, sleep=slept.append)
    assert len(slept) == 5
    assert all(0 <= d <= min(4.0, 0.5 * 2**n) for n, d in enumerate(slept))  # full jitter under the exponential cap
    assert laptop.store.sync_state()["last_error"].endswith("is not reachable")
    laptop.store.close()
    assert main(["audit", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["entries"], status["pending"], status["last_success_at"]) == (3, 3, None)
    assert "not reachable" in status["last_error"]


def test_a_hostile_crowd_stops_neither_health_nor_the_honest_sync(
    laptop: Laptop, credential: Credential, db_url: str, server: BackofficeProcess, tls: tuple[Path, Path, Path]
) -> None:
    """Invented tokens and a busy laptop token in flight throughout; the honest laptop's sync still lands once.

    Sized for the suite; tests/bench/test_bench_backoffice_crowd.py runs the full 500 + 200 against 10k entries.
    """
    laptop.append(1000)
    crowd = Crowd(server.url, ssl.create_default_context(cafile=str(tls[0])), credential.token, 100, 40)
    crowd.start()
    try:
        deadline = time.monotonic() + 60
        # The crowd is at work, and the probe has answers to show, before the honest laptop starts.
        while sum(crowd.report.statuses.values()) < 300 or crowd.report.health_samples < 5:
            assert time.monotonic() < deadline, f"the crowd got no answers: {crowd.report}"
            time.sleep(0.05)
        with BackofficeClient(credential) as client:
            result = sync_with_retries(laptop.store, client, max_attempts=60, delay=lambda _attempt: 0.2)
    finally:
        report = crowd.stop()
    assert result.pending == 0
    assert_exactly_once(db_url, laptop)
    assert report.health_samples >= 5 and report.health_failures == 0 and report.slowest_health_s < 1.0, report
    assert crowd.answered("member") <= {"200", "503"}, f"members: done, or busy and retry: {report}"
    assert crowd.answered("stranger") <= {"401", "503", "ReadError", "RemoteProtocolError", "WriteError"}, report
    assert report.statuses["stranger 401"] > 0 and report.statuses["member 200"] > 0, report


def _peak_memory_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def test_a_chunked_body_over_the_limit_is_refused_without_being_buffered(
    laptop: Laptop, credential: Credential, server: BackofficeProcess, tls: tuple[Path, Path, Path]
) -> None:
    """No Content-Length to check up front: the body is counted as it arrives, refused past the limit, not kept."""
    assert server.process is not None
    before = _peak_memory_bytes(server.process.pid)
    chunk = b" " * (1024 * 1024)
    body = (chunk for _ in range(MAX_BATCH_BYTES // len(chunk) + 64))  # 80 MiB, sent chunked
    try:
        response = httpx.post(
            f"{server.url}/api/v1/sync/batches",
            content=body,
            headers={"Authorization": f"Bearer {credential.token}"},
            verify=ssl.create_default_context(cafile=str(tls[0])),
            timeout=60,
        )
        assert response.status_code == 413, response.text
    except httpx.WriteError:
        pass  # the server answered 413 and closed while the rest was still being sent: refused either way
    grown = _peak_memory_bytes(server.process.pid) - before
    assert grown < 32 * 1024 * 1024, f"the server's peak memory grew by {grown / 2**20:.0f} MiB for a refused body"


def test_back_office_processes_starting_together_on_a_fresh_database_all_open_it(db_url: str) -> None:
    """`serve` and `enroll-laptop` (or several workers) often start together on an empty database.

    Each creates the missing tables; they must take turns, or the second CREATE of a table fails
    (it did, in most runs of two processes).
    """
    opener = (
        "import sys\n"
        "from sqlalchemy import inspect\n"
        "from fieldkit.backoffice.db import make_engine\n"
        "print(sorted(inspect(make_engine(sys.argv[1])).get_table_names()))\n"
    )
    with contextlib.ExitStack() as stack:
        urls = [db_url, *(stack.enter_context(_another_empty_database(db_url, n)) for n in range(1, 6))]
        for url in urls:
            openers = [
                subprocess.Popen(
                    [sys.executable, "-c", opener, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                for _ in range(3)
            ]
            for process in openers:
                out, err = process.communicate(timeout=120)
                assert process.returncode == 0, (err.strip().splitlines() or ["?"])[-1]
                assert "entries" in out and "laptops" in out


@contextlib.contextmanager
def _another_empty_database(db_url: str, number: int) -> Iterator[str]:
    if db_url.startswith("sqlite"):
        yield db_url.replace(".sqlite3", f"-{number}.sqlite3")
        return
    with postgres_database() as url:
        assert url is not None
        yield url
