"""A bundle whose signatures.json is 256 KB of hostile JSON (issue #12). Run with `make bench`.

Verification reads signatures.json first, before any signature is checked,
so whatever it costs, anyone can make a laptop pay. Each hostile shape is
timed through `verify_bundle` (whole check, ZIP opened and refused) against
the same verification of the valid bundle it was made from, measured in the
same run. Target: every one refused in under 0.1 s.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

from fieldkit.bundles.clock import STATE_NAME, TrustedState
from fieldkit.bundles.container import BundleContainer
from fieldkit.bundles.truststore import load_trust_store
from fieldkit.bundles.verify import VerificationReport, verify_bundle
from fieldkit.config import Limits, Settings
from fieldkit.demo import charger_facts_for, init_demo
from tests.support.zipcraft import RawEntry, craft_zip

SIZE = 256 * 1024 - 64
HOSTILE = {
    "unterminated escaped quotes": b'{"a": "' + b'\\"' * (SIZE // 2),
    "... ending in a lone backslash": b'{"a": "' + b'\\"' * (SIZE // 2) + b"\\",
    "brackets": b"[" * SIZE,
    "strings opened in arrays": b'["' * (SIZE // 2),
    "one long integer": b'{"schema_version": ' + b"7" * SIZE + b"}",
}


def _best_of(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def test_hostile_signatures_are_refused_quickly(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    init_demo(demo, 4096)
    valid = demo / "demo-vq-ac22-2.4.0.fwbundle"
    state = TrustedState(demo / STATE_NAME)
    store = load_trust_store(demo / "trust-store.json", Limits(), state.read().now)
    settings, facts = Settings(), charger_facts_for("VQ-AC22")
    raw = valid.read_bytes()
    container = BundleContainer.open(valid, Limits())
    members = {m.name: raw[m.data_offset : m.data_offset + m.size_bytes] for m in container.members.values()}

    def verify(path: Path) -> VerificationReport:
        return verify_bundle(path, store.body, state, settings, facts)

    reference_s = _best_of(5, lambda: verify(valid))
    print(f"\nverify the valid bundle (reference)              {reference_s * 1000:7.1f} ms")
    slowest = 0.0
    for name, text in HOSTILE.items():
        crafted = tmp_path / f"{abs(hash(name))}.fwbundle"
        entries = [RawEntry(n, text if n == "signatures.json" else d) for n, d in members.items()]
        crafted.write_bytes(craft_zip(entries))
        failure = verify(crafted).failure
        assert failure is not None and failure.name == "signatures", failure
        took = _best_of(3, functools.partial(verify, crafted))
        slowest = max(slowest, took)
        print(f"hostile signatures.json: {name:<30} {took * 1000:7.1f} ms  ({took / reference_s:.1f}x the valid one)"
              f"  refused: {failure.code}")  # fmt: skip
    print("target: each refused in under 100 ms")
    assert slowest < 0.1
