"""Trust-store attacks: rollback, unsigned, under-signed and tampered stores are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from fieldkit.bundles import keys, trustops
from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.truststore import TrustStoreBody, build_store, check_update, load_trust_store
from fieldkit.config import Limits
from fieldkit.errors import TrustStoreError
from tests.support.bundle_lab import NOW, BundleLab


def _install(lab: BundleLab, tmp_path: Path) -> tuple[Path, TrustedState]:
    path = tmp_path / "store.json"
    path.write_bytes(lab.store_path.read_bytes())
    return path, TrustedState(tmp_path / "state.json")


def _successor(lab: BundleLab, version: int, signers: list[object], body: TrustStoreBody | None = None) -> bytes:
    base = body or lab.store_body
    return build_store(base.model_copy(update={"version": version}), signers)  # type: ignore[arg-type]


def test_newer_store_signed_by_current_root_is_accepted(lab: BundleLab, tmp_path: Path) -> None:
    path, state = _install(lab, tmp_path)
    store = trustops.install_update(path, _successor(lab, 2, [lab.root]), state, Limits())
    assert store.version == 2
    assert load_trust_store(path, Limits(), NOW).version == 2


def test_root_rotation_needs_old_and_new_roots(lab: BundleLab, tmp_path: Path) -> None:
    path, state = _install(lab, tmp_path)
    new_root = ed25519.Ed25519PrivateKey.generate()
    rotated = lab.store_body.model_copy(
        update={
            "keys": [
                lab.trusted(new_root, "new root", ["trust-root"]),
                *lab.store_body.keys[1:],
            ]
        }
    )
    with pytest.raises(TrustStoreError, match="current trust-root keys"):
        trustops.install_update(path, _successor(lab, 2, [new_root], rotated), state, Limits())
    with pytest.raises(TrustStoreError, match="its own trust-root keys"):
        trustops.install_update(path, _successor(lab, 2, [lab.root], rotated), state, Limits())
    assert trustops.install_update(path, _successor(lab, 2, [lab.root, new_root], rotated), state, Limits())


def _with_demo_release_key(lab: BundleLab) -> TrustStoreBody:
    """A real store's body that also trusts the demo release key: `add-key` refuses it, a forged update may not."""
    from fieldkit.bundles.demo_keys import demo_private_key

    demo = lab.trusted(demo_private_key("demo-release"), "demo release", ["release"])
    return lab.store_body.model_copy(update={"keys": [*lab.store_body.keys, demo]})


def _signed_raw(lab: BundleLab, **changes: object) -> bytes:
    """A successor whose body, as JSON, has ``changes``: signed by the real root, so only its types are wrong."""
    from fieldkit.bundles.truststore import sign_body

    raw = {**lab.store_body.model_dump(mode="json", exclude_none=True), "version": 2, **changes}
    return json.dumps({"signed": raw, "signatures": sign_body(raw, [lab.root])}).encode()


TRUST_ATTACKS: dict[str, tuple[Callable[[BundleLab], bytes], str]] = {
    "rollback to an older version": (lambda w: _successor(w, 1, [w.root]), "not newer"),
    "unsigned update": (
        lambda w: json.dumps({"signed": json.loads(_successor(w, 2, [w.root]))["signed"], "signatures": []}).encode(),
        "unsigned",
    ),
    "update signed by a release key, not a root": (
        lambda w: _successor(w, 2, [w.release]),
        "current trust-root",
    ),
    "update signed by a revoked root": (
        lambda w: _successor(w, 2, [w.revoked]),
        "current trust-root",
    ),
    "tampered body after signing": (
        lambda w: _successor(w, 2, [w.root]).replace(b'"version": 2', b'"version": 7'),
        "current trust-root",
    ),
    "signed by the real root, trusting a demo key": (
        lambda w: _successor(w, 2, [w.root], _with_demo_release_key(w)),
        "anyone can derive",
    ),
    "not JSON": (lambda w: b"\x00\x01binary", "malformed"),
    # One document, one reading: no coercion between JSON types, no times outside 1970..9000.
    "version as a string": (lambda w: _signed_raw(w, version="2"), "valid integer"),
    "version as a float": (lambda w: _signed_raw(w, version=2.0), "valid integer"),
    "threshold as a string": (lambda w: _signed_raw(w, thresholds={"trust-root": "1"}), "valid integer"),
    "demo flag as a string": (lambda w: _signed_raw(w, demo="false"), "valid boolean"),
    "issued_at in year 1": (lambda w: _signed_raw(w, issued_at="0001-01-01T00:00:00Z"), "outside 1970"),
    "issued_at as a number": (lambda w: _signed_raw(w, issued_at=1767225600), "ISO 8601"),
    "extra top-level field": (
        lambda w: json.dumps({**json.loads(_successor(w, 2, [w.root])), "x": 1}).encode(),
        "exactly",
    ),
}


@pytest.mark.parametrize("name", list(TRUST_ATTACKS))
def test_trust_store_update_attack_is_refused(lab: BundleLab, tmp_path: Path, name: str) -> None:
    path, state = _install(lab, tmp_path)
    make, reason = TRUST_ATTACKS[name]
    before = path.read_bytes()
    with pytest.raises(TrustStoreError, match=reason):
        trustops.install_update(path, make(lab), state, Limits())
    assert path.read_bytes() == before, "a refused update must leave the store untouched"


def test_store_replaced_on_disk_by_an_older_copy_is_refused(lab: BundleLab, tmp_path: Path) -> None:
    path, state = _install(lab, tmp_path)
    old = path.read_bytes()
    trustops.install_update(path, _successor(lab, 2, [lab.root]), state, Limits())
    path.write_bytes(old)
    with pytest.raises(TrustStoreError, match="older than version 2"):
        trustops.open_store(path, Limits(), TrustedState(tmp_path / "state.json"))


def test_store_edited_on_disk_is_refused(lab: BundleLab, tmp_path: Path) -> None:
    path, _ = _install(lab, tmp_path)
    path.write_bytes(path.read_bytes().replace(b'"release": 1', b'"release": 9'))
    with pytest.raises(TrustStoreError, match="not signed by"):
        load_trust_store(path, Limits(), NOW)


def test_first_install_needs_a_self_signed_store(lab: BundleLab) -> None:
    assert check_update(None, lab.store_path.read_bytes(), Limits(), NOW).version == 1
    with pytest.raises(TrustStoreError, match="own trust-root"):
        check_update(None, _successor(lab, 1, [lab.release]), Limits(), NOW)


def _add_release_key(lab: BundleLab, tmp_path: Path, public_key: keys.PublicKey, name: str) -> None:
    from fieldkit.bundles.truststore import Scope

    path, state = _install(lab, tmp_path)
    trustops.add_key(path, public_key, name, ["release"], Scope(), None, None, {}, [lab.root], state, Limits())


def test_demo_keys_are_refused_by_a_real_store(lab: BundleLab, tmp_path: Path) -> None:
    from fieldkit.bundles.demo_keys import demo_private_key

    with pytest.raises(TrustStoreError, match="demo key"):
        _add_release_key(lab, tmp_path, demo_private_key("demo-release").public_key(), "demo")


def test_revoked_key_cannot_be_trusted_again(lab: BundleLab, tmp_path: Path) -> None:
    with pytest.raises(TrustStoreError, match="revoked"):
        _add_release_key(lab, tmp_path, lab.revoked.public_key(), "again")
