"""Ingesting audit batches: authenticate, verify, store each entry exactly once.

A batch is all-or-nothing. For each entry, in order: the signature is checked
against the enrolled laptop key over the entry as received (before its fields
are interpreted); then the schema; then the chain: an entry at or below the
high-water mark must be identical to the stored one (a harmless duplicate), the
next one must link to the stored head, anything beyond is a gap. A refused
batch stores nothing, and the laptop, which never deletes its entries, resends
from the high-water mark the refusal carries.

Exactly once is enforced three ways: the laptop row is locked for the batch
(PostgreSQL ``FOR UPDATE``; SQLite serialises writers), (laptop, seq) and
entry id are unique in the database, and answered batches are remembered by
their idempotency key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldkit.audit.entry import GENESIS_HASH, MAX_ENTRY_BYTES, AuditEntry, verify_and_hash
from fieldkit.audit.wire import BatchRequest, BatchResponse
from fieldkit.backoffice.db import Batch, Credential, Entry, Laptop, TrustStoreRelease, WorkOrderRelease
from fieldkit.errors import FieldkitError
from fieldkit.safejson import parse_bounded

TOKEN_PREFIX: Final = "fk1_"  # noqa: S105 - a format marker, not a secret
MAX_NAME_CHARS: Final = 128  # as the database holds a laptop or operator name


class SyncConflict(Exception):
    """The batch cannot be stored as it is; ``code`` says why (HTTP 409)."""

    def __init__(self, code: str, detail: str, high_water_mark: int) -> None:
        super().__init__(detail)
        self.code, self.detail, self.high_water_mark = code, detail, high_water_mark


class AuthError(Exception):
    """401 (no or bad credential) or 403 (credential not allowed to do this)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class EnrollmentError(FieldkitError):
    exit_code = 2


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def bearer_digest(authorization: str | None) -> str:
    """The digest of an ``Authorization: Bearer`` token; 401 when there is none."""
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError(401, "missing bearer credential")
    return token_digest(authorization[len("Bearer ") :].strip())


def authenticate(session: Session, digest: str, kind: str) -> Credential:
    """The live credential whose token has ``digest`` (see ``bearer_digest``), of ``kind``; 401 or 403 otherwise."""
    credential = session.get(Credential, digest)
    # The lookup is by a hash of the secret; compare again in constant time anyway.
    if credential is None or not hmac.compare_digest(credential.token_sha256, digest) or credential.revoked:
        raise AuthError(401, "unknown or revoked credential")
    if credential.kind != kind:
        raise AuthError(403, f"this credential is not a {kind} credential")
    return credential


def enroll_laptop(session: Session, public_key_pem: bytes, name: str, reissue: bool = False) -> tuple[str, str]:
    """Register a laptop's public key; return (laptop_id, its new token). Shown once.

    A laptop already enrolled keeps its token unless ``reissue`` is asked for:
    then the new token replaces every earlier one (a lost or leaked credential).
    """
    from fieldkit.audit.entry import laptop_id_for

    if not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise EnrollmentError(f"a laptop name is 1 to {MAX_NAME_CHARS} printable characters", "e.g. its asset tag")

    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise EnrollmentError(
            "not a PEM public key", "pass the laptop.pub written by `fieldkit identity init`"
        ) from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise EnrollmentError("laptop keys are Ed25519", "pass the laptop.pub written by `fieldkit identity init`")
    laptop_id = laptop_id_for(key)
    token = new_token()
    with session.begin():
        laptop = session.get(Laptop, laptop_id)
        if laptop is None:
            session.add(
                Laptop(
                    laptop_id=laptop_id,
                    name=name,
                    public_key_pem=public_key_pem.decode("ascii"),
                    head_seq=0,
                    head_hash=GENESIS_HASH,
                )
            )
        elif laptop.revoked:
            raise EnrollmentError(f"laptop {laptop_id} was revoked", "a revoked laptop needs a new identity")
        elif not reissue:
            raise EnrollmentError(
                f"laptop {laptop_id} is already enrolled (as {laptop.name!r}); its credential stays valid",
                "to replace a lost or leaked credential, enroll again with --reissue (the old one stops working)",
            )
        for old in session.scalars(select(Credential).where(Credential.subject == laptop_id)):
            old.revoked = True
        session.add(Credential(token_sha256=token_digest(token), kind="laptop", subject=laptop_id))
    return laptop_id, token


def create_operator(session: Session, name: str) -> str:
    if not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise EnrollmentError(f"an operator name is 1 to {MAX_NAME_CHARS} printable characters", "e.g. ops-berlin")
    token = new_token()
    with session.begin():
        session.add(Credential(token_sha256=token_digest(token), kind="operator", subject=name))
    return token


def _entry_row(laptop_id: str, canonical: bytes, entry: AuditEntry, digest: str) -> dict[str, Any]:
    charger, bundle = entry.charger, entry.bundle
    return {
        "laptop_id": laptop_id,
        "seq": entry.seq,
        "entry_id": entry.id,
        "entry_hash": digest,
        "prev_hash": entry.prev_hash,
        "wall_utc": entry.time.wall_utc,
        "clock_trust": entry.time.clock_trust,
        "technician_id": entry.technician.id,
        "site": entry.site,
        "action": entry.action,
        "status": entry.status,
        "charger_serial": charger.serial if charger else None,
        "charger_vendor": charger.vendor if charger else None,
        "charger_model": charger.model if charger else None,
        "hardware_revision": charger.hardware_revision if charger else None,
        "bundle_id": bundle.bundle_id if bundle else None,
        "from_version": entry.from_version,
        "to_version": entry.to_version,
        "raw_json": canonical.decode("utf-8"),  # the RFC 8785 form: hash it and you get entry_hash
    }


@dataclass
class _Head:
    seq: int
    digest: str


def ingest_batch(session: Session, credential: Credential, batch: BatchRequest) -> BatchResponse:
    if credential.subject != batch.laptop_id:
        raise AuthError(403, "this credential belongs to another laptop")
    session.commit()  # end the read that authenticated; the batch gets a transaction of its own
    try:
        with session.begin():
            laptop = session.get(Laptop, batch.laptop_id, with_for_update=True)
            if laptop is None or laptop.revoked:
                raise AuthError(403, "unknown or revoked laptop")
            batch_key = f"{batch.laptop_id}:{batch.batch_id}"
            answered = session.get(Batch, batch_key)
            if answered is not None:
                return BatchResponse(
                    high_water_mark=laptop.head_seq, stored=0, duplicates=len(batch.entries), replayed=True
                )
            public_key = serialization.load_pem_public_key(laptop.public_key_pem.encode("ascii"))
            assert isinstance(public_key, ed25519.Ed25519PublicKey)
            head = _Head(laptop.head_seq, laptop.head_hash)
            stored = duplicates = 0
            previous_seq = 0
            rows: list[dict[str, Any]] = []
            for raw in batch.entries:
                entry, digest, canonical = _authenticated(raw, public_key, batch.laptop_id, laptop.head_seq)
                if entry.seq <= previous_seq:
                    raise SyncConflict("out-of-order", "entries in a batch must have ascending seq", laptop.head_seq)
                previous_seq = entry.seq
                if entry.seq <= head.seq:
                    existing = session.get(Entry, (batch.laptop_id, entry.seq))
                    if existing is None or existing.entry_hash != digest:
                        raise SyncConflict(
                            "conflicting-entry",
                            f"entry {entry.seq} differs from the one already stored",
                            laptop.head_seq,
                        )
                    duplicates += 1
                    continue
                if entry.seq > head.seq + 1:
                    raise SyncConflict("gap", f"entry {entry.seq} arrived but {head.seq + 1} is next", laptop.head_seq)
                if entry.prev_hash != head.digest:
                    raise SyncConflict(
                        "broken-chain", f"entry {entry.seq} does not link to entry {head.seq}", laptop.head_seq
                    )
                rows.append(_entry_row(batch.laptop_id, canonical, entry, digest))
                head = _Head(entry.seq, digest)
                stored += 1
            if rows:
                # One multi-row INSERT (Core, not the ORM unit of work): the batch is the hot path.
                session.execute(insert(Entry), rows)
            laptop.head_seq, laptop.head_hash = head.seq, head.digest
            session.add(Batch(batch_key=batch_key, laptop_id=batch.laptop_id, high_water_mark=head.seq, stored=stored))
            return BatchResponse(high_water_mark=head.seq, stored=stored, duplicates=duplicates)
    except IntegrityError as exc:
        # A concurrent delivery of the same entries won the race: nothing of this batch was stored.
        current = session.get(Laptop, batch.laptop_id)
        raise SyncConflict(
            "concurrent-delivery",
            "another delivery stored these entries first; resend",
            current.head_seq if current else 0,
        ) from exc


def _authenticated(
    raw: dict[str, Any], public_key: ed25519.Ed25519PublicKey, laptop_id: str, hwm: int
) -> tuple[AuditEntry, str, bytes]:
    if not isinstance(raw, dict) or len(json.dumps(raw)) > MAX_ENTRY_BYTES:
        raise SyncConflict("malformed-entry", "an entry is not an object or is too large", hwm)
    if raw.get("laptop_id") != laptop_id:
        raise SyncConflict("foreign-entry", "an entry belongs to another laptop", hwm)
    try:
        verified = verify_and_hash(raw, public_key)
    except (TypeError, ValueError) as exc:  # not canonicalisable JSON (e.g. huge integers)
        raise SyncConflict("malformed-entry", f"an entry cannot be canonicalised: {exc}", hwm) from exc
    if verified is None:
        raise SyncConflict("bad-signature", f"entry {raw.get('seq')!r} is not signed by this laptop's key", hwm)
    try:
        entry = AuditEntry.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SyncConflict("malformed-entry", f"entry {raw.get('seq')!r}: {first['loc']}: {first['msg']}", hwm) from exc
    return entry, verified[0], verified[1]


def publish_trust_store(session: Session, content: bytes) -> int:
    """Store a trust store for laptops to pull; its version must be new."""
    from fieldkit.bundles.truststore import check_update
    from fieldkit.config import Limits

    store = check_update(None, content, Limits(), dt.datetime.now(dt.UTC))  # self-consistent, signed
    with session.begin():
        newest = session.scalars(select(TrustStoreRelease.version).order_by(TrustStoreRelease.version.desc())).first()
        if newest is not None and store.version <= newest:
            raise EnrollmentError(f"trust store version {store.version} is not newer than published {newest}")
        session.add(TrustStoreRelease(version=store.version, content=content.decode("utf-8")))
    return store.version


def publish_work_order(session: Session, content: bytes) -> str:
    """Store a signed work order for laptops to pull (replacing one with the same id)."""
    from fieldkit.bundles.workorder import MAX_WORK_ORDER_BYTES, WorkOrderBody

    try:
        document = parse_bounded(content, MAX_WORK_ORDER_BYTES, 16)
        body = WorkOrderBody.model_validate(document["signed"])
    except (ValueError, KeyError, TypeError) as exc:  # JsonShapeError and ValidationError are ValueErrors
        raise EnrollmentError(
            f"not a fieldkit work order: {exc}", "create it with `fieldkit workorder create`"
        ) from exc
    if not document.get("signatures"):
        raise EnrollmentError("the work order is unsigned", "sign it with a dispatch key")
    with session.begin():
        existing = session.get(WorkOrderRelease, body.id)
        if existing is None:
            session.add(WorkOrderRelease(work_order_id=body.id, content=content.decode("utf-8")))
        else:
            existing.content = content.decode("utf-8")
    return body.id
