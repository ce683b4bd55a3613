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
from tests.support.world import World, with_components

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


def _valid_bundles(world: World) -> list[bytes]:
    plain = world.bundle(payloads={"rootfs": bytes(range(256)) * 8}, name="mut-plain.fwbundle")
    payloads = {"app": b"FIRMWARE" * 64, "meter": b"METER" * 50}
    document = world.manifest(payloads)
    document = with_components(document, ocpp=world.ocpp_block(payloads["app"]))
    document["components"][1]["metrology_relevant"] = True
    rich = world.bundle(
        payloads=payloads,
        manifest=document,
        signers=[world.release, world.metrology, world.oem_leaf_key],
        chains={2: [world.oem_leaf]},
        name="mut-rich.fwbundle",
    )
    return [plain.read_bytes(), rich.read_bytes()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(min_value=0, max_value=1), steps=st.lists(mutations, min_size=1, max_size=3))
def test_a_mutated_bundle_is_never_accepted(world: World, tmp_path: Path, which: int, steps: list[Mutation]) -> None:
    original = _valid_bundles_cache(world)[which]
    mutated = original
    for step in steps:
        mutated = _apply(mutated, step) if mutated else mutated
    path = tmp_path / "mutated.fwbundle"
    path.write_bytes(mutated)
    report = world.verify(path, FACTS)  # must not raise
    if mutated == original:
        assert report.valid
    else:
        assert not report.valid, f"accepted a modified bundle after {steps}"
        assert report.failure is not None and report.failure.code


_CACHE: dict[int, list[bytes]] = {}


def _valid_bundles_cache(world: World) -> list[bytes]:
    if id(world) not in _CACHE:
        bundles = _valid_bundles(world)
        for raw in bundles:
            path = world.dir / "control.fwbundle"
            path.write_bytes(raw)
            assert world.verify(path, FACTS).valid, "the unmutated control must verify"
        _CACHE[id(world)] = bundles
    return _CACHE[id(world)]
