"""Signed work orders: which chargers may get which bundle, and when.

The back office issues them; the laptop pulls them when online and enforces
them offline. A work order is::

    {"signed": {...}, "signatures": [{"key_id", "algorithm", "signature"}]}

signed over ``WORK_ORDER_CONTEXT`` || JCS(signed) by keys holding the
``dispatch`` role in the laptop's trust store (to its threshold, in scope
for the vendor if one is named). Signatures are checked before the body is
interpreted, as for bundles and trust stores.

Enforcement (``authorize``): when a valid work order names the charger, the
bundle and the time must match it; when none names the charger and the
settings require a work order, the update is refused. Either refusal can be
overridden only with a typed reason, which the caller records as an audit
entry.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import rfc8785
from pydantic import BaseModel, Field, ValidationError, model_validator

from fieldkit.bundles import keys
from fieldkit.bundles.truststore import TrustStoreBody, sign_envelope, split_envelope, valid_signers
from fieldkit.errors import FieldkitError, UsageError
from fieldkit.fsutil import atomic_output, read_regular_file
from fieldkit.safejson import STRICT, Timestamp

WORK_ORDER_CONTEXT: Final = b"fieldkit.work-order.v1\x00"
MAX_WORK_ORDER_BYTES: Final = 256 * 1024
MIN_OVERRIDE_REASON_CHARS: Final = 10


class WorkOrderError(FieldkitError):
    exit_code = 8


class WorkOrderBody(BaseModel):
    model_config = STRICT

    type: Literal["fieldkit-work-order"]
    schema_version: Literal[1]
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    issued_at: Timestamp
    vendor: str | None = Field(default=None, max_length=64)
    site: str | None = Field(default=None, max_length=128)
    charger_serials: list[str] = Field(min_length=1, max_length=10000)
    bundle_id: str = Field(max_length=128)
    not_before: Timestamp
    not_after: Timestamp
    note: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _window(self) -> WorkOrderBody:
        if self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


def signing_message(signed_raw: dict[str, Any]) -> bytes:
    return WORK_ORDER_CONTEXT + rfc8785.dumps(signed_raw)


def sign_work_order(body: WorkOrderBody, signers: list[keys.PrivateKey]) -> bytes:
    signed_raw = body.model_dump(mode="json", exclude_none=True)
    signatures = sign_envelope(signing_message(signed_raw), signers)
    return json.dumps({"signed": signed_raw, "signatures": signatures}, indent=2).encode("utf-8") + b"\n"


def verify_work_order(data: bytes, store: TrustStoreBody, now: dt.datetime) -> WorkOrderBody:
    """Authenticate against the trust store's dispatch keys, then parse. Raises WorkOrderError."""
    signed_raw, entries, _ = split_envelope(data, MAX_WORK_ORDER_BYTES, 16, "work order", WorkOrderError)
    vendor = signed_raw.get("vendor")
    signers = valid_signers(
        signing_message(signed_raw), entries, store, "dispatch", now, vendor if isinstance(vendor, str) else None
    )
    needed = store.threshold("dispatch")
    if len(signers) < needed:
        raise WorkOrderError(
            f"work order is signed by {len(signers)} of the {needed} trusted dispatch keys it needs",
            "ask the back office for a work order signed by a dispatch key in this laptop's trust store",
        )
    try:
        return WorkOrderBody.model_validate(signed_raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise WorkOrderError(f"work order is invalid: {first['loc']}: {first['msg']}") from exc


def work_order_dir() -> Path:
    from fieldkit import config

    return config.data_dir() / "work-orders"


def save_work_order(data: bytes, body: WorkOrderBody, directory: Path | None = None) -> Path:
    directory = directory or work_order_dir()
    path = directory / f"{body.id}.json"
    with atomic_output(path) as handle:
        handle.write(data)
    return path


def load_work_orders(store: TrustStoreBody, now: dt.datetime, directory: Path | None = None) -> list[WorkOrderBody]:
    """Installed work orders that still verify; ones that no longer do (revoked key) are ignored."""
    directory = directory or work_order_dir()
    orders = []
    for path in sorted(directory.glob("*.json")):
        try:
            orders.append(verify_work_order(read_regular_file(path, MAX_WORK_ORDER_BYTES), store, now))
        except (WorkOrderError, OSError, UsageError):
            continue
    return orders


@dataclass(frozen=True)
class Authorization:
    allowed: bool
    reason: str
    work_order: WorkOrderBody | None = None
    overridden: bool = False


def authorize(
    orders: list[WorkOrderBody],
    charger_serial: str,
    bundle_id: str,
    now: dt.datetime,
    require_work_order: bool,
    override_reason: str | None = None,
) -> Authorization:
    """May this bundle go to this charger now? Refusals can be overridden with a typed reason."""
    naming = [o for o in orders if charger_serial in o.charger_serials]
    matching = [o for o in naming if o.bundle_id == bundle_id and o.not_before <= now <= o.not_after]
    if matching:
        order = matching[0]
        return Authorization(True, f"work order {order.id} covers {charger_serial}", order)
    if naming:
        reasons = []
        for order in naming:
            if order.bundle_id != bundle_id:
                reasons.append(f"work order {order.id} is for bundle {order.bundle_id}")
            else:
                reasons.append(
                    f"work order {order.id} is valid {order.not_before:%Y-%m-%d %H:%M} to "
                    f"{order.not_after:%Y-%m-%d %H:%M} UTC"
                )
        refusal = "; ".join(reasons)
    elif require_work_order:
        refusal = f"no work order names charger {charger_serial}"
    else:
        return Authorization(True, "no work order applies and none is required")
    if override_reason is None:
        return Authorization(False, refusal)
    if len(override_reason.strip()) < MIN_OVERRIDE_REASON_CHARS:
        raise WorkOrderError(
            f"an override needs a reason of at least {MIN_OVERRIDE_REASON_CHARS} characters",
            "type why this update must happen outside the work order",
        )
    return Authorization(True, f"overridden: {refusal}", naming[0] if naming else None, overridden=True)
