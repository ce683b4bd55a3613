"""Crash test: SIGKILL an appending process 200 times; nothing acknowledged is ever lost.

The appender is a forked child (the same code as a fresh process, without
paying interpreter start-up 200 times). It appends as fast as it can and
reports each seq through a pipe once ``append`` has returned. After every
kill, at a random moment, the store must open, its chain must verify, and
every acknowledged entry must be there.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import time
from pathlib import Path

from fieldkit.audit.entry import GENESIS_HASH
from fieldkit.audit.identity import init_identity, load_profile, unlock
from fieldkit.audit.store import AuditStore

KILLS = 200


def _appender(identity: Path, audit: Path, write_fd: int) -> None:
    """Runs in the child; never returns."""
    try:
        profile, key = load_profile(identity), unlock(b"crash-test-pass", identity)
        store = AuditStore(audit, segment_entries=8)  # small segments: rotation happens often
        os.write(write_fd, f"ready {store.head_seq}\n".encode())
        while True:
            entry = store.append(
                key, profile, "crash.test", wall_utc=dt.datetime.now(dt.UTC), clock_trust="laptop-clock", note="x" * 200
            )
            os.write(write_fd, f"{entry['seq']}\n".encode())
    finally:
        os._exit(1)


def _read_all(read_fd: int) -> str:
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_sigkill_at_random_moments_never_loses_an_acknowledged_entry(tmp_path: Path) -> None:
    identity, audit = tmp_path / "identity", tmp_path / "audit"
    init_identity("T-1", "Crash Tester", None, b"crash-test-pass", identity)
    profile = load_profile(identity)
    rng = random.Random(20261124)
    acknowledged = 0
    verified = (0, GENESIS_HASH)
    for kill in range(KILLS):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _appender(identity, audit, write_fd)
        os.close(write_fd)
        first = b""
        while not first.endswith(b"\n"):
            byte = os.read(read_fd, 1)
            assert byte, f"appender died before it was ready (kill {kill})"
            first += byte
        label, head = first.decode().split()
        assert label == "ready"
        # After a restart the head may be ahead of what we saw acknowledged (an append that
        # completed just before the kill, unreported), never behind it.
        assert int(head) >= acknowledged
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen = [int(line) for line in _read_all(read_fd).split() if line.isdigit()]
        os.close(read_fd)
        if seen:
            acknowledged = max(acknowledged, *seen)
        with AuditStore(audit, segment_entries=8, writable=True) as store:
            full = kill % 25 == 0 or kill == KILLS - 1
            report = store.verify(
                profile.public_key(), profile.laptop_id, after=(0, GENESIS_HASH) if full else verified
            )
            assert report.ok, f"after kill {kill}: {report}"
            assert store.head_seq >= acknowledged, f"after kill {kill}: lost {store.head_seq + 1}..{acknowledged}"
            verified = (store.head_seq, store.head_hash)
    with AuditStore(audit, segment_entries=8, writable=False) as store:
        assert [e["seq"] for e in store.entries()] == list(range(1, store.head_seq + 1))
    assert acknowledged > KILLS, "the appender should have stored many entries across the kills"
