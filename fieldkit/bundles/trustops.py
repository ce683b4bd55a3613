"""Trust-store operations: open, initialise, change, update.

Every change goes through the same door as an update from the back office:
build the successor (version + 1), sign it with trust-root keys, and accept it
only if `truststore.check_update` does. There is no way to edit a trust store
that skips its own rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from fieldkit.bundles import keys
from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.demo_keys import is_demo_key
from fieldkit.bundles.roles import Role
from fieldkit.bundles.truststore import (
    RootRole,
    Scope,
    TrustedRoot,
    TrustStore,
    TrustStoreBody,
    build_store,
    check_update,
    load_trust_store,
    save_trust_store,
    trusted_key_entry,
)
from fieldkit.config import Limits
from fieldkit.errors import TrustStoreError


def open_store(path: Path, limits: Limits, state: TrustedState) -> TrustStore:
    """Load the store and refuse one older than a version already installed here."""
    store = load_trust_store(path, limits, state.read().now)
    if store.version < state.highest_trust_store_version(path):
        raise TrustStoreError(
            f"trust store {path} is version {store.version}, older than version "
            f"{state.highest_trust_store_version(path)} installed before",
            "an older copy replaced it; import the current one with `fieldkit trust update`",
        )
    state.observe_trust_store_version(path, store.version)
    return store


def init_store(
    path: Path,
    root_keys: list[keys.PrivateKey],
    thresholds: dict[Role, int],
    state: TrustedState,
    limits: Limits,
    demo: bool = False,
    force: bool = False,
) -> TrustStore:
    if path.exists() and not force:
        raise TrustStoreError(f"a trust store already exists at {path}", "use `fieldkit trust update`, or --force")
    if not root_keys:
        raise TrustStoreError("a trust store needs at least one trust-root key", "pass --root-key")
    entries = []
    for index, private_key in enumerate(root_keys, 1):
        public = private_key.public_key()
        _refuse_demo_key(keys.key_id(public), demo)
        entries.append(trusted_key_entry(public, f"trust-root-{index}", ["trust-root"]))
    body = TrustStoreBody(
        type="fieldkit-trust-store",
        schema_version=1,
        version=max(1, state.highest_trust_store_version(path) + 1) if force else 1,
        issued_at=state.read().now.replace(microsecond=0),
        demo=demo,
        keys=entries,
        thresholds={"trust-root": 1, "release": 1, "metrology": 1, **thresholds},
    )
    store = check_update(None, build_store(body, root_keys), limits, state.read().now)
    save_trust_store(path, store)
    state.observe_trust_store_version(path, store.version)
    return store


def _refuse_demo_key(kid: str, demo_store: bool) -> None:
    if is_demo_key(kid) and not demo_store:
        raise TrustStoreError(
            "this is a fieldkit demo key, which anyone can derive",
            "demo keys are trusted only in demo trust stores; use a key made by `fieldkit keys generate`",
        )


def change_store(
    path: Path,
    signing_keys: list[keys.PrivateKey],
    change: Callable[[TrustStoreBody], dict[str, object]],
    state: TrustedState,
    limits: Limits,
) -> TrustStore:
    """Apply ``change`` (returning updated body fields) as a new, signed version."""
    current = open_store(path, limits, state)
    updates = change(current.body)
    body = current.body.model_copy(
        update={
            **updates,
            "version": current.version + 1,
            "issued_at": state.read().now.replace(microsecond=0),
        }
    )
    body = TrustStoreBody.model_validate(body.model_dump())  # re-run the consistency checks
    successor = check_update(current, build_store(body, signing_keys), limits, state.read().now)
    save_trust_store(path, successor)
    state.observe_trust_store_version(path, successor.version)
    return successor


def add_key(
    path: Path,
    public: keys.PublicKey,
    name: str,
    roles: list[Role],
    scope: Scope,
    not_before: dt.datetime | None,
    not_after: dt.datetime | None,
    thresholds: dict[Role, int],
    signing_keys: list[keys.PrivateKey],
    state: TrustedState,
    limits: Limits,
) -> TrustStore:
    kid = keys.key_id(public)

    def change(body: TrustStoreBody) -> dict[str, object]:
        _refuse_demo_key(kid, body.demo)
        if body.is_revoked(kid):
            raise TrustStoreError("this key was revoked and cannot be trusted again", "generate a new key")
        others = [k for k in body.keys if k.key_id != kid]
        entry = trusted_key_entry(public, name, roles, scope, not_before, not_after)
        return {"keys": [*others, entry], "thresholds": {**body.thresholds, **thresholds}}

    return change_store(path, signing_keys, change, state, limits)


def add_root(
    path: Path,
    certificate: x509.Certificate,
    name: str,
    roles: list[RootRole],
    scope: Scope,
    signing_keys: list[keys.PrivateKey],
    state: TrustedState,
    limits: Limits,
) -> TrustStore:
    from cryptography.hazmat.primitives import serialization

    kid = keys.certificate_key_id(certificate)
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise TrustStoreError("the certificate is not a CA certificate", "pin the manufacturer's root certificate")

    def change(body: TrustStoreBody) -> dict[str, object]:
        _refuse_demo_key(kid, body.demo)
        others = [r for r in body.x509_roots if r.key_id != kid]
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        entry = TrustedRoot(key_id=kid, name=name, certificate_pem=pem, roles=roles, scope=scope)
        return {"x509_roots": [*others, entry]}

    return change_store(path, signing_keys, change, state, limits)


def revoke(
    path: Path, kid: str, signing_keys: list[keys.PrivateKey], state: TrustedState, limits: Limits
) -> TrustStore:
    def change(body: TrustStoreBody) -> dict[str, object]:
        if body.is_revoked(kid):
            raise TrustStoreError(f"key {kid[:16]}… is already revoked")
        return {"revoked_key_ids": sorted([*body.revoked_key_ids, kid])}

    return change_store(path, signing_keys, change, state, limits)


def install_update(path: Path, data: bytes, state: TrustedState, limits: Limits) -> TrustStore:
    """`fieldkit trust update`: accept a newer signed store, or refuse with the reason."""
    current = open_store(path, limits, state) if path.exists() else None
    successor = check_update(current, data, limits, state.read().now)
    if successor.version < state.highest_trust_store_version(path):
        raise TrustStoreError(
            f"the update is version {successor.version}, older than version "
            f"{state.highest_trust_store_version(path)} installed before",
            "trust stores never go back; ask the back office for the current one",
        )
    save_trust_store(path, successor)
    state.observe_trust_store_version(path, successor.version)
    return successor
