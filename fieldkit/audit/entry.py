"""Audit entries: the wire schema shared by the laptop and the back office.

An entry is a JSON object. Its signature is Ed25519 by the laptop key over

    "fieldkit.audit.entry.v1" || 0x00 || JCS(entry without "signature")

and its hash (what the next entry's ``prev_hash`` holds) is the SHA-256 of
JCS(entry with "signature"), where JCS is RFC 8785 canonical JSON. Both are
computed over the JSON object as stored or received, never over a
re-serialised model, so the laptop and the back office agree byte for byte.
The first entry of a laptop has ``prev_hash`` = 64 zeros.

Nothing secret goes into an entry: no passphrases, tokens or keys; device
responses and free text are size-bounded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Final, Literal

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, Field

from fieldkit.safejson import STRICT, Timestamp

ENTRY_CONTEXT: Final = b"fieldkit.audit.entry.v1\x00"
GENESIS_HASH: Final = "0" * 64
MAX_DEVICE_RESPONSES: Final = 16
MAX_DEVICE_RESPONSE_CHARS: Final = 4096
MAX_ENTRY_BYTES: Final = 96 * 1024
ClockTrust = Literal["trusted", "laptop-clock", "went-backwards"]


MAX_ERROR_CHARS: Final = 2000
MAX_NOTE_CHARS: Final = 4000


class _Strict(BaseModel):
    model_config = STRICT


class Technician(_Strict):
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)


class ChargerRef(_Strict):
    vendor: str = Field(max_length=64)
    model: str = Field(max_length=64)
    hardware_revision: str = Field(max_length=32)
    serial: str = Field(min_length=1, max_length=64)
    address: str | None = Field(default=None, max_length=256)


class BundleRef(_Strict):
    bundle_id: str = Field(max_length=128)
    version: str | None = Field(default=None, max_length=64)
    payload_sha256: dict[str, str] = Field(default_factory=dict, max_length=32)


class EntryTime(_Strict):
    wall_utc: Timestamp
    monotonic_us: int = Field(ge=0, le=2**53 - 1)  # RFC 8785 integers stop at 2**53
    boot_id: str = Field(max_length=64)
    clock_trust: ClockTrust


class AuditEntry(_Strict):
    schema_version: Literal[1] = 1
    id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    laptop_id: str = Field(pattern=r"^laptop-[0-9a-f]{16}$")
    seq: int = Field(ge=1)
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    time: EntryTime
    technician: Technician
    site: str | None = Field(default=None, max_length=128)
    charger: ChargerRef | None = None
    action: str = Field(pattern=r"^[a-z][a-z0-9.-]{1,63}$")
    bundle: BundleRef | None = None
    from_version: str | None = Field(default=None, max_length=64)
    to_version: str | None = Field(default=None, max_length=64)
    status: str | None = Field(default=None, max_length=64)
    device_responses: list[str] = Field(default_factory=list, max_length=MAX_DEVICE_RESPONSES)
    error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)
    signature: str = Field(min_length=1, max_length=128)


_JCS_SAFE_INT: Final = 2**53 - 1


def _plain(value: Any) -> bool:
    """True if ``value`` is JSON where Python's sorted, compact json.dumps IS RFC 8785.

    That holds without floats (JCS has its own number format), with integers
    inside +-(2**53 - 1) (JCS refuses others), with ASCII object keys (code-point
    order = UTF-16 order) and without lone surrogates in strings (JCS refuses them).
    """
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return value.isascii() or not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, int):
        return -_JCS_SAFE_INT <= value <= _JCS_SAFE_INT
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``: the stdlib encoder where it is exact, the rfc8785 package otherwise."""
    if _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return rfc8785.dumps(value)


def canonical_forms(raw: dict[str, Any]) -> tuple[bytes, bytes]:
    """(JCS of the entry without "signature", JCS of the whole entry), canonicalising each member once.

    RFC 8785 serialises an object as its members, sorted by the UTF-16 code
    units of their names, each as canonical-name ":" canonical-value; so both
    forms are assembled from the same member encodings instead of running the
    (pure Python) canonicaliser twice over the entry.
    """
    members = sorted(
        ((name, canonical_json(name) + b":" + canonical_json(value)) for name, value in raw.items()),
        key=lambda item: item[0].encode("utf-16-be"),
    )
    unsigned = b"{" + b",".join(m for name, m in members if name != "signature") + b"}"
    full = b"{" + b",".join(m for _, m in members) + b"}"
    return unsigned, full


def signing_bytes(raw: dict[str, Any]) -> bytes:
    return ENTRY_CONTEXT + canonical_forms(raw)[0]


def entry_hash(raw: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_forms(raw)[1]).hexdigest()


def verify_and_hash(raw: dict[str, Any], public_key: ed25519.Ed25519PublicKey) -> tuple[str, bytes] | None:
    """(hash, canonical bytes) if the signature is valid, else None: one canonicalisation for all."""
    text = raw.get("signature")
    if not isinstance(text, str):
        return None
    unsigned, full = canonical_forms(raw)
    try:
        public_key.verify(base64.b64decode(text, validate=True), ENTRY_CONTEXT + unsigned)
    except (binascii.Error, ValueError, InvalidSignature, TypeError):
        return None
    return hashlib.sha256(full).hexdigest(), full


def sign_entry(raw: dict[str, Any], private_key: ed25519.Ed25519PrivateKey) -> dict[str, Any]:
    signature = private_key.sign(signing_bytes(raw))
    return {**raw, "signature": base64.b64encode(signature).decode("ascii")}


def signature_valid(raw: dict[str, Any], public_key: ed25519.Ed25519PublicKey) -> bool:
    text = raw.get("signature")
    if not isinstance(text, str):
        return False
    try:
        signature = base64.b64decode(text, validate=True)
        public_key.verify(signature, signing_bytes(raw))
    except (binascii.Error, ValueError, InvalidSignature, TypeError):
        return False
    return True


def bound_device_responses(responses: list[str]) -> list[str]:
    """Keep device output useful but bounded: the last responses, each truncated."""
    kept = responses[-MAX_DEVICE_RESPONSES:]
    return [r if len(r) <= MAX_DEVICE_RESPONSE_CHARS else r[: MAX_DEVICE_RESPONSE_CHARS - 1] + "…" for r in kept]


def laptop_id_for(public_key: ed25519.Ed25519PublicKey) -> str:
    """A laptop's id: "laptop-" + the first 16 hex digits of its key id (SHA-256 of the SPKI)."""
    from cryptography.hazmat.primitives import serialization

    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "laptop-" + hashlib.sha256(spki).hexdigest()[:16]
