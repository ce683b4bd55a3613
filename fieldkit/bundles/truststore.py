"""The trust store: which keys and X.509 roots may sign what.

File shape (offline_bundles/README.md, "Trust store")::

    {"signed": {...body...}, "signatures": [{"key_id", "algorithm", "signature"}]}

The signatures cover ``TRUST_STORE_CONTEXT`` followed by the RFC 8785
canonical form of ``signed`` exactly as it appears in the file, and are
checked before the body is interpreted. A store is valid only if its own
``trust-root`` keys sign it to threshold. An update is accepted only if it
is signed to threshold by the trust-root keys of the store it replaces AND by
its own, and its version is higher: rotation needs both old and new roots,
and nothing can take the store back to an older version.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import rfc8785
from pydantic import BaseModel, Field, ValidationError, model_validator

from fieldkit.bundles import keys
from fieldkit.bundles.demo_keys import is_demo_key
from fieldkit.bundles.roles import Role
from fieldkit.config import Limits
from fieldkit.errors import FieldkitError, TrustStoreError, UsageError
from fieldkit.fsutil import atomic_output, read_regular_file
from fieldkit.safejson import STRICT, JsonShapeError, Timestamp, first_validation_error, parse_bounded

TRUST_STORE_CONTEXT: Final = b"fieldkit.trust-store.v1\x00"
RootRole = Literal["release", "metrology", "ocpp-manufacturer"]
KEY_ID_PATTERN: Final = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = STRICT


class Scope(_Strict):
    """Which bundles a key may sign for. An empty list means "any"."""

    vendors: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)

    def allows(self, vendor: str, models: list[str]) -> bool:
        if self.vendors and vendor not in self.vendors:
            return False
        return not self.models or all(m in self.models for m in models)

    def describe(self) -> str:
        vendors = ", ".join(self.vendors) or "any vendor"
        models = ", ".join(self.models) or "any model"
        return f"{vendors}; {models}"


class TrustedKey(_Strict):
    key_id: str = Field(pattern=KEY_ID_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    algorithm: keys.Algorithm
    public_key_pem: str = Field(max_length=4096)
    roles: list[Role] = Field(min_length=1)
    not_before: Timestamp | None = None
    not_after: Timestamp | None = None
    scope: Scope = Field(default_factory=Scope)

    @model_validator(mode="after")
    def _key_matches_id(self) -> TrustedKey:
        public = keys.as_public_key(_load_pem_public(self.public_key_pem))
        if keys.key_id(public) != self.key_id:
            raise ValueError(f"key_id of {self.name!r} does not match its public key")
        if keys.algorithm_of(public) != self.algorithm:
            raise ValueError(f"algorithm of {self.name!r} does not match its public key")
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise ValueError(f"validity window of {self.name!r} is empty")
        return self

    def public_key(self) -> keys.PublicKey:
        return keys.as_public_key(_load_pem_public(self.public_key_pem))

    def validity_problem(self, now: dt.datetime) -> str | None:
        if self.not_before and now < self.not_before:
            return "not-yet-valid"
        if self.not_after and now > self.not_after:
            return "expired"
        return None


class TrustedRoot(_Strict):
    """A pinned X.509 root, e.g. an OCPP ManufacturerRootCertificate."""

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    certificate_pem: str = Field(max_length=16384)
    roles: list[RootRole] = Field(min_length=1)
    scope: Scope = Field(default_factory=Scope)

    @model_validator(mode="after")
    def _cert_matches_id(self) -> TrustedRoot:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(self.certificate_pem.encode("ascii"))
        if keys.certificate_key_id(cert) != self.key_id:
            raise ValueError(f"key_id of root {self.name!r} does not match its certificate")
        return self


class TrustStoreBody(_Strict):
    type: Literal["fieldkit-trust-store"]
    schema_version: Literal[1]
    version: int = Field(ge=1)
    issued_at: Timestamp
    demo: bool = False
    keys: list[TrustedKey] = Field(default_factory=list)
    x509_roots: list[TrustedRoot] = Field(default_factory=list)
    thresholds: dict[Role, int] = Field(default_factory=dict)
    revoked_key_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TrustStoreBody:
        ids = [k.key_id for k in self.keys] + [r.key_id for r in self.x509_roots]
        if len(ids) != len(set(ids)):
            raise ValueError("a key or root appears twice")
        for role, count in self.thresholds.items():
            if count < 1:
                raise ValueError(f"threshold for {role} must be at least 1")
        roots = [k for k in self.keys if "trust-root" in k.roles and k.key_id not in self.revoked_key_ids]
        if len(roots) < self.threshold("trust-root"):
            raise ValueError("fewer unrevoked trust-root keys than the trust-root threshold")
        return self

    def threshold(self, role: str) -> int:
        return self.thresholds.get(role, 1)  # type: ignore[call-overload, no-any-return]

    def key(self, kid: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.key_id == kid), None)

    def is_revoked(self, kid: str) -> bool:
        return kid in self.revoked_key_ids


class EnvelopeSignature(_Strict):
    """One signature of a signed envelope ({"signed": ..., "signatures": [...]})."""

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    algorithm: keys.Algorithm
    signature: str = Field(max_length=512)


def _load_pem_public(pem: str) -> object:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_public_key(pem.encode("ascii"))


@dataclass
class TrustStore:
    """A trust store whose own signatures have been checked."""

    body: TrustStoreBody
    signed_raw: dict[str, Any]
    signatures: list[dict[str, str]] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.body.version

    @property
    def fingerprint(self) -> str:
        """SHA-256 of exactly what its signatures cover: two stores with one fingerprint say the same thing."""
        return "sha256:" + hashlib.sha256(signing_message(self.signed_raw)).hexdigest()

    def to_bytes(self) -> bytes:
        document = {"signed": self.signed_raw, "signatures": self.signatures}
        return json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def signing_message(signed_raw: dict[str, Any]) -> bytes:
    return TRUST_STORE_CONTEXT + rfc8785.dumps(signed_raw)


def valid_signers(
    message: bytes,
    signatures: list[EnvelopeSignature],
    authority: TrustStoreBody,
    role: Role,
    now: dt.datetime,
    vendor: str | None = None,
) -> set[str]:
    """Key ids of ``authority``'s usable ``role`` keys (in scope for ``vendor``) that validly signed ``message``.

    One rule for every signed envelope: trust stores (role trust-root) and
    work orders (role dispatch).
    """
    signers: set[str] = set()
    for entry in signatures:
        trusted = authority.key(entry.key_id)
        if (
            trusted is None
            or role not in trusted.roles
            or authority.is_revoked(entry.key_id)
            or trusted.validity_problem(now)
            or trusted.algorithm != entry.algorithm
            or (vendor is not None and not trusted.scope.allows(vendor, []))
        ):
            continue
        try:
            signature = base64.b64decode(entry.signature, validate=True)
        except (binascii.Error, ValueError):
            continue  # an undecodable signature signs nothing
        if keys.verify(trusted.public_key(), signature, message):
            signers.add(entry.key_id)
    return signers


def split_envelope(
    data: bytes, max_bytes: int, max_depth: int, what: str, error: type[FieldkitError]
) -> tuple[dict[str, Any], list[EnvelopeSignature], list[dict[str, str]]]:
    """Bounded parse of {"signed": {...}, "signatures": [...]}; nothing in "signed" is interpreted."""
    try:
        document = parse_bounded(data, max_bytes, max_depth)
    except JsonShapeError as exc:
        raise error(f"the {what} is malformed: {exc}") from exc
    if not isinstance(document, dict) or set(document) != {"signed", "signatures"}:
        raise error(f"the {what} must hold exactly 'signed' and 'signatures'")
    signed_raw, raw_signatures = document["signed"], document["signatures"]
    if not isinstance(signed_raw, dict) or not isinstance(raw_signatures, list):
        raise error(f"the {what} has the wrong shape")
    try:
        entries = [EnvelopeSignature.model_validate(s) for s in raw_signatures]
    except ValidationError as exc:
        raise error(f"a {what} signature entry is malformed: {first_validation_error(exc, 'document')}") from exc
    return signed_raw, entries, raw_signatures


def sign_envelope(message: bytes, signing_keys: list[keys.PrivateKey]) -> list[dict[str, str]]:
    """Signature entries over ``message``, sorted by key id."""
    entries = []
    for private_key in signing_keys:
        public = private_key.public_key()
        entries.append(
            {
                "key_id": keys.key_id(public),
                "algorithm": keys.algorithm_of(public),
                "signature": base64.b64encode(keys.sign(private_key, message)).decode("ascii"),
            }
        )
    return sorted(entries, key=lambda e: e["key_id"])


def _split(data: bytes, limits: Limits) -> tuple[dict[str, Any], list[EnvelopeSignature], list[dict[str, str]]]:
    return split_envelope(
        data, limits.max_trust_store_bytes, limits.max_json_depth, "trust store file", TrustStoreError
    )


def _parse_body(signed_raw: dict[str, Any]) -> TrustStoreBody:
    try:
        body = TrustStoreBody.model_validate(signed_raw)
    except ValidationError as exc:
        raise TrustStoreError(f"the trust store content is invalid: {first_validation_error(exc, 'document')}") from exc
    if not body.demo:
        # However it was signed: a key anyone can derive from fieldkit's source is no trust at all.
        derivable = [k.name for k in body.keys if is_demo_key(k.key_id)] + [
            r.name for r in body.x509_roots if is_demo_key(r.key_id)
        ]
        if derivable:
            raise TrustStoreError(
                f"this trust store trusts fieldkit demo key(s) {', '.join(derivable)}, which anyone can derive",
                "demo keys belong only in the demo's own trust store; ask the back office for a store without them",
            )
    return body


def load_trust_store(path: Path, limits: Limits, now: dt.datetime) -> TrustStore:
    """Load a trust store and check that its own trust-root keys sign it to threshold.

    The self-check happens before the body is interpreted beyond what is needed
    to find those keys: the body is parsed once, its trust-root keys are used
    to check the signatures over the canonical bytes, and only then is it
    returned.
    """
    try:
        data = read_regular_file(path, limits.max_trust_store_bytes)
    except UsageError as exc:
        raise TrustStoreError(f"cannot read trust store: {exc.message}", exc.hint) from exc
    except FileNotFoundError as exc:
        raise TrustStoreError(
            f"no trust store at {path}",
            "pass --trust-store FILE (after `make demo`: .demo/trust-store.json), set FIELDKIT_HOME to the fieldkit "
            "home that has one, or create one with `fieldkit trust init`",
        ) from exc
    except OSError as exc:
        raise TrustStoreError(f"cannot read trust store {path}: {exc.strerror}") from exc
    signed_raw, entries, raw_signatures = _split(data, limits)
    body = _parse_body(signed_raw)
    signers = valid_signers(signing_message(signed_raw), entries, body, "trust-root", now)
    if len(signers) < body.threshold("trust-root"):
        raise TrustStoreError(
            f"trust store {path} is not signed by {body.threshold('trust-root')} of its own trust-root keys",
            "the file was altered or damaged; restore it or import a signed one with `fieldkit trust update`",
        )
    return TrustStore(body, signed_raw, raw_signatures)


def check_update(current: TrustStore | None, data: bytes, limits: Limits, now: dt.datetime) -> TrustStore:
    """Accept ``data`` as the successor of ``current`` or raise TrustStoreError.

    With ``current`` None (first install), the new store only has to be
    consistently self-signed: that first trust is the user's explicit choice.
    """
    signed_raw, entries, raw_signatures = _split(data, limits)
    message = signing_message(signed_raw)
    if not entries:
        raise TrustStoreError("the trust store update is unsigned", "only a signed trust store can be imported")
    if current is not None:
        old_signers = valid_signers(message, entries, current.body, "trust-root", now)
        needed = current.body.threshold("trust-root")
        if len(old_signers) < needed:
            raise TrustStoreError(
                f"the trust store update is signed by {len(old_signers)} of the {needed} current "
                "trust-root keys it needs",
                "ask the back office for an update signed by the current trust-root keys",
            )
    body = _parse_body(signed_raw)
    own_signers = valid_signers(message, entries, body, "trust-root", now)
    if len(own_signers) < body.threshold("trust-root"):
        raise TrustStoreError(
            f"the trust store update is not signed by {body.threshold('trust-root')} of its own trust-root keys",
            "a rotated trust store must be signed by both the old and the new trust-root keys",
        )
    if current is not None:
        if body.version <= current.version:
            raise TrustStoreError(
                f"the trust store update has version {body.version}, not newer than the installed "
                f"version {current.version}",
                "trust stores never go back; ask the back office for the current one",
            )
        if body.demo and not current.body.demo:
            raise TrustStoreError("a demo trust store cannot replace a real one", "use the demo's own --trust-store")
    return TrustStore(body, signed_raw, raw_signatures)


def sign_body(signed_raw: dict[str, Any], signing_keys: list[keys.PrivateKey]) -> list[dict[str, str]]:
    return sign_envelope(signing_message(signed_raw), signing_keys)


def build_store(body: TrustStoreBody, signing_keys: list[keys.PrivateKey]) -> bytes:
    """Serialise and sign a body; the result is what `check_update` accepts."""
    signed_raw = body.model_dump(mode="json", exclude_none=True)
    return TrustStore(body, signed_raw, sign_body(signed_raw, signing_keys)).to_bytes()


def save_trust_store(path: Path, store: TrustStore) -> None:
    with atomic_output(path) as handle:
        handle.write(store.to_bytes())


def trusted_key_entry(
    public_key: keys.PublicKey,
    name: str,
    roles: list[Role],
    scope: Scope | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> TrustedKey:
    return TrustedKey(
        key_id=keys.key_id(public_key),
        name=name,
        algorithm=keys.algorithm_of(public_key),
        public_key_pem=keys.plain_public_pem(public_key),
        roles=roles,
        scope=scope or Scope(),
        not_before=not_before,
        not_after=not_after,
    )
