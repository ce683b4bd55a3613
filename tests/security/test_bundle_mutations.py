"""Random mutations of valid bundles: never a crash, never an acceptance.

The container has exactly one valid encoding and every byte of it is
authenticated or derived, so ANY change to a valid bundle must be refused,
and refused through BundleRejectedError (reported as a failed check), never
through an unexpected exception.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldkit.bundles.verify import ChargerFacts
from tests.support.bundle_lab import BundleLab, with_components

FACTS = ChargerFacts(model="VQ-AC22", hardware_revision="C", installed_version="2.3.0", installed_security_version=1)

Mutation = tuple[str, int, bytes]

mutations = st.tuples(
    st.sampled_from(["flip", "set", "truncate", "insert", "delete"]),
    st.integers(min_value=0, max_value=1 << 30),
    st.binary(min_size=1, max_size=8),
)


def _apply(original: bytes, mutation: Mutation) -> bytes:
    kind, position, data = mutation
    position %= len(original)
    if kind == "flip":
        bit = 1 << (data[0] % 8)
        return original[:position] + bytes([original[position] ^ bit]) + original[position + 1 :]
    if kind == "set":
        return original[:position] + data + original[position + len(data) :]
    if kind == "truncate":
        return original[:position]
    if kind == "insert":
        return original[:position] + data + original[position:]
    return original[:position] + original[position + len(data) :]


def _valid_bundles(lab: BundleLab) -> list[bytes]:
    plain = lab.bundle(payloads={"rootfs": bytes(range(256)) * 8}, name="mut-plain.fwbundle")
    payloads = {"app": b"FIRMWARE" * 64, "meter": b"METER" * 50}
    document = lab.manifest(payloads)
    document = with_components(document, ocpp=lab.ocpp_block(payloads["app"]))
    document["components"][1]["metrology_relevant"] = True
    rich = lab.bundle(
        payloads=payloads,
        manifest=document,
        signers=[lab.release, lab.metrology, lab.oem_leaf_key],
        chains={2: [lab.oem_leaf]},
        name="mut-rich.fwbundle",
    )
    return [plain.read_bytes(), rich.read_bytes()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(min_value=0, max_value=1), steps=st.lists(mutations, min_size=1, max_size=3))
def test_a_mutated_bundle_is_never_accepted(lab: BundleLab, tmp_path: Path, which: int, steps: list[Mutation]) -> None:
    original = _valid_bundles_cache(lab)[which]
    mutated = original
    for step in steps:
        mutated = _apply(mutated, step) if mutated else mutated
    path = tmp_path / "mutated.fwbundle"
    path.write_bytes(mutated)
    report = lab.verify(path, FACTS)  # must not raise
    if mutated == original:
        assert report.valid
    else:
        assert not report.valid, f"accepted a modified bundle after {steps}"
        assert report.failure is not None and report.failure.code


_CACHE: dict[int, list[bytes]] = {}


def _valid_bundles_cache(lab: BundleLab) -> list[bytes]:
    if id(lab) not in _CACHE:
        bundles = _valid_bundles(lab)
        for raw in bundles:
            path = lab.dir / "control.fwbundle"
            path.write_bytes(raw)
            assert lab.verify(path, FACTS).valid, "the unmutated control must verify"
        _CACHE[id(lab)] = bundles
    return _CACHE[id(lab)]
