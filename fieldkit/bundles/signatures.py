"""signatures.json: who signed a manifest, and whether fieldkit trusts them.

Every signature covers ``MANIFEST_CONTEXT`` followed by the exact bytes of
manifest.json. The context string keeps a bundle signature from ever being
valid as a trust-store signature or anything else signed with the same key.

A signature is made either by a key pinned in the trust store (``key_id``
alone), or by a key certified by an X.509 chain that ends at a pinned root
(``certificate_chain``: leaf first, PEM). signatures.json itself must be in
RFC 8785 canonical form, entries sorted by key id, so that it, too, has only
one valid encoding.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import rfc8785
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import BaseModel, Field, ValidationError

from fieldkit.bundles import keys
from fieldkit.bundles.truststore import KEY_ID_PATTERN, Scope, TrustStoreBody
from fieldkit.config import Limits
from fieldkit.errors import BundleRejectedError
from fieldkit.safejson import STRICT, first_validation_error, parse_for_check

MANIFEST_CONTEXT: Final = b"fieldkit.bundle.manifest.v1\x00"
CHECK: Final = "signatures"


class SignatureEntry(BaseModel):
    model_config = STRICT

    key_id: str = Field(pattern=KEY_ID_PATTERN)
    algorithm: keys.Algorithm
    signature: str = Field(min_length=1, max_length=256)
    certificate_chain: list[str] | None = Field(default=None, min_length=1)


class SignaturesFile(BaseModel):
    model_config = STRICT

    signatures: list[SignatureEntry]


def manifest_message(manifest_bytes: bytes) -> bytes:
    return MANIFEST_CONTEXT + manifest_bytes


def encode_signatures(entries: list[SignatureEntry]) -> bytes:
    document = {"signatures": [e.model_dump(exclude_none=True) for e in sorted(entries, key=lambda e: e.key_id)]}
    return rfc8785.dumps(document)


def _reject(code: str, message: str, hint: str) -> BundleRejectedError:
    return BundleRejectedError(CHECK, code, message, hint)


def parse_signatures(data: bytes, limits: Limits) -> list[SignatureEntry]:
    document = parse_for_check(data, CHECK, "signatures", limits.max_signatures_bytes, limits.max_json_depth)
    try:
        parsed = SignaturesFile.model_validate(document)
    except ValidationError as exc:
        raise _reject(
            "signatures-invalid",
            f"signatures.json: {first_validation_error(exc)}",
            "the bundle's signatures were not written by a conforming tool; ask its publisher",
        ) from exc
    if rfc8785.dumps(document) != data:
        raise _reject(
            "signatures-non-canonical",
            "signatures.json is not in canonical (RFC 8785) form",
            "re-sign the bundle with `fieldkit bundle sign`",
        )
    entries = parsed.signatures
    if not entries:
        raise _reject("unsigned", "the bundle carries no signature", "sign it with `fieldkit bundle sign`")
    if len(entries) > limits.max_signatures:
        raise _reject(
            "too-many-signatures",
            f"more than {limits.max_signatures} signatures",
            "ask the publisher",
        )
    ids = [e.key_id for e in entries]
    if ids != sorted(set(ids)):
        raise _reject(
            "signatures-non-canonical",
            "signatures.json lists a key twice or out of order",
            "re-sign the bundle with `fieldkit bundle sign`",
        )
    return entries


SignerKind = Literal["pinned-key", "x509"]


@dataclass
class Signer:
    """One signature entry and what the trust store says about it."""

    key_id: str
    kind: SignerKind
    name: str = ""
    roles: list[str] = field(default_factory=list)
    scope: Scope = field(default_factory=Scope)
    problem: str | None = None  # a rejection code, None if usable so far
    detail: str = ""
    # X.509 only: every certificate's validity window, checked at signing time
    # once the (authenticated) manifest says when that was.
    validity_windows: list[tuple[str, dt.datetime, dt.datetime]] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "kind": self.kind,
            "name": self.name,
            "roles": self.roles,
            "scope": self.scope.model_dump(),
            "status": self.problem or "ok",
            "detail": self.detail,
        }


_PROBLEM_TEXT: Final = {
    "unknown-key": "is not in the trust store",
    "revoked-key": "has been revoked",
    "expired-key": "has expired",
    "key-not-yet-valid": "is not valid yet",
    "bad-signature": "made a signature that does not match manifest.json",
    "algorithm-mismatch": "is used with the wrong algorithm",
    "untrusted-chain": "is certified by a chain that does not end at a pinned root",
    "certificate-usage": "has a certificate not meant for code signing",
    "certificate-revoked": "has a revoked certificate in its chain",
    "malformed-certificate": "comes with a certificate that cannot be read",
    "key-id-mismatch": "does not match the certificate it comes with",
    "out-of-scope": "may not sign for this vendor or model",
    "certificate-not-valid-at-signing-time": "had no valid certificate when the bundle was created",
}


def problem_text(signer: Signer) -> str:
    label = signer.name or signer.key_id[:16]
    text = f"key {label} {_PROBLEM_TEXT.get(signer.problem or '', signer.problem or 'is fine')}"
    return f"{text} ({signer.detail})" if signer.detail else text


def _decode_signature(entry: SignatureEntry) -> bytes | None:
    try:
        raw = base64.b64decode(entry.signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Canonical base64 only: a re-encoded signature would be a different file.
    return raw if base64.b64encode(raw).decode("ascii") == entry.signature else None


def evaluate_signer(
    entry: SignatureEntry, message: bytes, store: TrustStoreBody, now: dt.datetime, limits: Limits
) -> Signer:
    """Check one signature cryptographically and against the trust store.

    Scope and X.509 signing-time checks need the manifest and happen later
    (``apply_manifest_constraints``); everything else is decided here.
    """
    signature = _decode_signature(entry)
    if entry.certificate_chain is None:
        signer = Signer(entry.key_id, "pinned-key")
        trusted = store.key(entry.key_id)
        if trusted is None:
            signer.problem = "unknown-key"
            return signer
        signer.name, signer.roles, signer.scope = trusted.name, list(trusted.roles), trusted.scope
        if store.is_revoked(entry.key_id):
            signer.problem = "revoked-key"
        elif trusted.algorithm != entry.algorithm:
            signer.problem = "algorithm-mismatch"
        elif signature is None or not keys.verify(trusted.public_key(), signature, message):
            signer.problem = "bad-signature"
        else:
            validity = trusted.validity_problem(now)
            if validity is not None:
                signer.problem = {"expired": "expired-key", "not-yet-valid": "key-not-yet-valid"}[validity]
        return signer
    return _evaluate_x509_signer(entry, signature, message, store, limits)


def _evaluate_x509_signer(
    entry: SignatureEntry,
    signature: bytes | None,
    message: bytes,
    store: TrustStoreBody,
    limits: Limits,
) -> Signer:
    from cryptography.x509.verification import (
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    signer = Signer(entry.key_id, "x509")
    chain_pems = entry.certificate_chain or []
    if len(chain_pems) > limits.max_certificate_chain:
        signer.problem, signer.detail = "malformed-certificate", "chain too long"
        return signer
    try:
        chain = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in chain_pems]
        leaf_key = keys.as_public_key(chain[0].public_key())
    except Exception as exc:
        signer.problem, signer.detail = "malformed-certificate", type(exc).__name__
        return signer
    signer.name = chain[0].subject.rfc4514_string()
    if keys.key_id(leaf_key) != entry.key_id:
        signer.problem = "key-id-mismatch"
        return signer
    if keys.algorithm_of(leaf_key) != entry.algorithm:
        signer.problem = "algorithm-mismatch"
        return signer
    if signature is None or not keys.verify(leaf_key, signature, message):
        signer.problem = "bad-signature"
        return signer
    roots = {r.key_id: r for r in store.x509_roots if {"release", "metrology"} & set(r.roles)}
    if not roots:
        signer.problem, signer.detail = (
            "untrusted-chain",
            "no X.509 root is pinned for bundle signing",
        )
        return signer
    root_certs = [x509.load_pem_x509_certificate(r.certificate_pem.encode("ascii")) for r in roots.values()]
    # Path building and CA constraints by cryptography's own validator. The
    # time given is the leaf's start of validity, so that only the structure
    # is judged here; validity at signing time is checked once the manifest
    # (authenticated by this very signature) says when signing happened.
    try:
        verifier = (
            PolicyBuilder()
            .store(Store(root_certs))
            .time(chain[0].not_valid_before_utc)
            .max_chain_depth(limits.max_certificate_chain)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        verified = verifier.verify(chain[0], chain[1:]).chain
    except VerificationError as exc:
        signer.problem, signer.detail = "untrusted-chain", str(exc)[:200]
        return signer
    root = roots.get(keys.certificate_key_id(verified[-1]))
    if root is None:  # the validator found a root we did not pin: impossible, but never trust it
        signer.problem = "untrusted-chain"
        return signer
    if verified[:-1] != chain:
        # Exactly the path from the leaf up to (not including) the pinned root: a chain padded with
        # certificates the path does not use, or carrying the root, is a second encoding of one release.
        signer.problem, signer.detail = "non-minimal-chain", "the chain must hold the leaf and its intermediates only"
        return signer
    signer.roles = [r for r in root.roles if r in ("release", "metrology")]
    signer.scope = root.scope
    if any(store.is_revoked(keys.certificate_key_id(c)) for c in verified):
        signer.problem = "certificate-revoked"
        return signer
    usage_problem = code_signing_usage_problem(chain[0])
    if usage_problem:
        signer.problem, signer.detail = "certificate-usage", usage_problem
        return signer
    signer.validity_windows = [
        (c.subject.rfc4514_string(), c.not_valid_before_utc, c.not_valid_after_utc) for c in verified
    ]
    return signer


def code_signing_usage_problem(leaf: x509.Certificate) -> str | None:
    """None if the leaf may sign code: digitalSignature and the codeSigning EKU."""
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not key_usage.digital_signature:
            return "key usage lacks digitalSignature"
    except x509.ExtensionNotFound:
        return "no key usage extension"
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "no extended key usage extension"
    if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        return "extended key usage lacks codeSigning"
    return None


def apply_manifest_constraints(signers: list[Signer], vendor: str, models: list[str], signed_at: dt.datetime) -> None:
    """Narrow usable signers by scope and, for X.509, validity at signing time."""
    for signer in signers:
        if not signer.usable:
            continue
        if not signer.scope.allows(vendor, models):
            signer.problem, signer.detail = "out-of-scope", f"allowed: {signer.scope.describe()}"
            continue
        for subject, not_before, not_after in signer.validity_windows:
            if not not_before <= signed_at <= not_after:
                signer.problem = "certificate-not-valid-at-signing-time"
                signer.detail = f"{subject} valid {not_before:%Y-%m-%d} to {not_after:%Y-%m-%d}"
                break


def count_role(signers: list[Signer], role: str) -> int:
    return len({s.key_id for s in signers if s.usable and role in s.roles})


def threshold_failure(signers: list[Signer], role: str, needed: int, check: str) -> BundleRejectedError | None:
    """None if ``needed`` distinct usable keys of ``role`` signed; else the most specific reason."""
    have = count_role(signers, role)
    if have >= needed:
        return None
    failed = [s for s in signers if not s.usable]
    candidates = [s for s in failed if role in s.roles or not s.roles]
    if role == "metrology":
        return BundleRejectedError(
            check,
            "metrology-signature-missing",
            f"a metrology-relevant component needs {needed} metrology signature(s), found {have}",
            "metrology-relevant firmware must be countersigned by a metrology key; ask the publisher",
        )
    if have == 0 and candidates:
        first = candidates[0]
        return BundleRejectedError(
            check,
            first.problem or "threshold-not-met",
            f"signature refused: {problem_text(first)}",
            _HINTS.get(first.problem or "", "get a correctly signed bundle from its publisher"),
        )
    details = "; ".join(problem_text(s) for s in failed)
    return BundleRejectedError(
        check,
        "threshold-not-met",
        f"{have} of the {needed} {role} signatures required" + (f" ({details})" if details else ""),
        "the bundle needs more signatures from trusted release keys; ask the publisher",
    )


_HINTS: Final = {
    "unknown-key": "if this signer should be trusted, add its key with `fieldkit trust add-key`; "
    "otherwise do not use this bundle",
    "revoked-key": "the signing key was withdrawn; get a bundle re-signed with a current key",
    "expired-key": "the signing key is past its validity; get a bundle signed with a current key",
    "key-not-yet-valid": "check the laptop clock, or get a bundle signed with a current key",
    "bad-signature": "the manifest was altered after signing; do not use this bundle",
    "untrusted-chain": "the certificate chain does not lead to a pinned manufacturer root; "
    "import the root with `fieldkit trust add-key --certificate` only if you trust it",
    "certificate-usage": "the certificate is not a code-signing certificate; ask the publisher",
    "certificate-revoked": "a certificate in the chain was withdrawn; get a re-signed bundle",
    "out-of-scope": "this key may not sign for this vendor or model; ask the publisher",
    "certificate-not-valid-at-signing-time": "the certificate had expired or was not yet valid "
    "when the bundle was created; get a re-signed bundle",
}
