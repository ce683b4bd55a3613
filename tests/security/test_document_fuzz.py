"""Every untrusted document type, fuzzed: a clean refusal (its own error type) or a result, in bounded time.

For each reader fieldkit has for a document that arrives from outside (a
bundle's manifest and signatures, a trust store, a work order, a sync batch,
an audit segment, a job journal, a charger's helper and RAUC answers, the
laptop's trusted-state and back-office credential files), hypothesis feeds
arbitrary bytes, arbitrary JSON values (huge integers, deep nesting, odd
types) and valid documents with bytes inserted. Anything but the reader's own
refusal (a KeyError, a TypeError, a RecursionError...) fails, as does a
reader taking longer than READ_LIMIT_S.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fieldkit.audit.sync import Credential, SyncError
from fieldkit.audit.wire import BatchRequest
from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.manifest import parse_manifest
from fieldkit.bundles.signatures import parse_signatures
from fieldkit.bundles.truststore import check_update
from fieldkit.bundles.workorder import WorkOrderError, verify_work_order
from fieldkit.config import Limits
from fieldkit.drivers.helpers_protocol import HelperIdentity, HelperStatus, parse_answer
from fieldkit.drivers.rauc import RaucStatus
from fieldkit.errors import BundleRejectedError, DeviceRefusedError, TrustStoreError, UsageError
from fieldkit.safejson import JsonShapeError, parse_bounded, parse_for_check
from tests.support.bundle_lab import NOW, BundleLab

READ_LIMIT_S = 2.0  # generous for a loaded machine: the quadratic cases this guards against took 13 s and more
LIMITS = Limits()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=40,
)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _documents(valid: bytes) -> st.SearchStrategy[bytes]:
    inserted = st.tuples(st.integers(0, len(valid)), st.binary(min_size=1, max_size=8)).map(
        lambda cut: valid[: cut[0]] + cut[1] + valid[cut[0] :]
    )
    deep = st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n)
    return st.binary(max_size=512) | json_values.map(_json_bytes) | inserted | deep


def _manifest(data: bytes, _tmp: Path) -> object:
    document = parse_for_check(data, "manifest", "manifest", LIMITS.max_manifest_bytes, LIMITS.max_json_depth)
    return parse_manifest(document)


def _batch(data: bytes, _tmp: Path) -> object:
    return BatchRequest.model_validate(parse_bounded(data, 16 * 1024 * 1024, 32))


def _helper_identity(data: bytes, _tmp: Path) -> object:
    return parse_answer(HelperIdentity, "charger-identity", parse_bounded(data, 1024 * 1024, 16))


def _helper_status(data: bytes, _tmp: Path) -> object:
    return parse_answer(HelperStatus, "charger-status", parse_bounded(data, 1024 * 1024, 16))


def _rauc(data: bytes, _tmp: Path) -> object:
    return RaucStatus.parse(data.decode("utf-8", "replace"))


def _journal(data: bytes, _tmp: Path) -> object:
    from fieldkit.updates.journal import _read_record

    return _read_record(data)


def _segment(data: bytes, tmp: Path) -> object:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from fieldkit.audit.store import AuditStore

    directory = tmp / f"audit-{time.monotonic_ns()}"
    directory.mkdir()
    (directory / "segment-000001.json").write_bytes(data)
    with AuditStore(directory, writable=False) as store:
        listed = list(store.entries())
        report = store.verify(ed25519.Ed25519PrivateKey.generate().public_key(), "laptop-0000000000000000")
    assert not report.ok or not listed, "a fuzzed segment verified with entries under a fresh key"
    return report


def _trusted_state(data: bytes, tmp: Path) -> object:
    path = tmp / f"state-{time.monotonic_ns()}.json"
    path.write_bytes(data)
    state = TrustedState(path)
    state.read()
    return state


def _credential(data: bytes, tmp: Path) -> object:
    path = tmp / f"cred-{time.monotonic_ns()}.json"
    path.write_bytes(data)
    return Credential.load(path)


READERS: dict[str, tuple[Callable[[bytes, Path], object], tuple[type[BaseException], ...], bytes]] = {
    "manifest": (_manifest, (BundleRejectedError,), b""),
    "signatures.json": (lambda d, _t: parse_signatures(d, LIMITS), (BundleRejectedError,), b""),
    "trust store": (lambda d, _t: check_update(None, d, LIMITS, NOW), (TrustStoreError,), b""),
    "sync batch": (_batch, (JsonShapeError, ValidationError), b""),
    "charger-identity answer": (_helper_identity, (JsonShapeError, DeviceRefusedError), b""),
    "charger-status answer": (_helper_status, (JsonShapeError, DeviceRefusedError), b""),
    "rauc status": (_rauc, (DeviceRefusedError,), b""),
    "job journal": (_journal, (ValueError,), b""),
    "audit segment": (_segment, (), b""),
    "trusted-state.json": (_trusted_state, (), b""),
    "back-office credential": (_credential, (SyncError, UsageError), b""),
}


def _valid_examples(lab: BundleLab) -> dict[str, bytes]:
    from fieldkit.bundles.container import BundleContainer

    bundle = lab.bundle()
    container = BundleContainer.open(bundle, LIMITS)
    raw = bundle.read_bytes()

    def member(name: str) -> bytes:
        item = container.members[name]
        return raw[item.data_offset : item.data_offset + item.size_bytes]

    return {
        "manifest": member("manifest.json"),
        "signatures.json": member("signatures.json"),
        "trust store": lab.store_path.read_bytes(),
        "work order": b"",
        "sync batch": json.dumps({"laptop_id": "laptop-" + "0" * 16, "batch_id": "0" * 32, "entries": [{}]}).encode(),
        "charger-identity answer": json.dumps({"vendor": "V", "model": "M", "serial": "S"}).encode(),
        "charger-status answer": json.dumps({"connectors": [], "components": {}}).encode(),
        "rauc status": json.dumps(
            {"compatible": "c", "booted": "A", "slots": [{"rootfs.0": {"bootname": "A"}}]}
        ).encode(),
        "job journal": b'{"job_id": "x", "state": "Downloading"}',
        "audit segment": b'{"_default": {"1": {"seq": 1}}}',
        "trusted-state.json": b'{"last_trusted_time": "2026-01-01T00:00:00Z", "highest_trust_store_versions": {}}',
        "back-office credential": b'{"backoffice_url": "https://x", "laptop_id": "l", "token": "t"}',
    }


@pytest.mark.parametrize("name", [*READERS, "work order"])
def test_a_fuzzed_document_is_refused_cleanly_and_quickly(lab: BundleLab, tmp_path: Path, name: str) -> None:
    if name == "work order":
        reader: Callable[[bytes, Path], object] = lambda d, _t: verify_work_order(d, lab.store_body, NOW)  # noqa: E731
        allowed: tuple[type[BaseException], ...] = (WorkOrderError,)
    else:
        reader, allowed, _ = READERS[name]
    valid = _valid_examples(lab)[name] or b"{}"

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=_documents(valid))
    def check(data: bytes) -> None:
        start = time.perf_counter()
        with contextlib.suppress(*allowed):
            reader(data, tmp_path)
        elapsed = time.perf_counter() - start
        assert elapsed < READ_LIMIT_S, f"{name}: {elapsed:.2f} s for {len(data)} bytes"

    check()


def test_the_readers_accept_what_they_should(lab: BundleLab, tmp_path: Path) -> None:
    """Positive controls: the fuzz above would pass for readers that refuse everything."""
    examples = _valid_examples(lab)
    assert _manifest(examples["manifest"], tmp_path)
    assert parse_signatures(examples["signatures.json"], LIMITS)
    assert check_update(None, examples["trust store"], LIMITS, NOW).version >= 1
    state = _trusted_state(examples["trusted-state.json"], tmp_path)
    assert isinstance(state, TrustedState) and state.lost is None
    assert state.read().last_trusted == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert isinstance(_credential(examples["back-office credential"], tmp_path), Credential)
