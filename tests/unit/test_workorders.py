from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from fieldkit.bundles.workorder import WorkOrderBody, WorkOrderError, authorize, sign_work_order, verify_work_order
from tests.support.bundle_lab import NOW, BundleLab


def _body(**changes: Any) -> WorkOrderBody:
    fields: dict[str, Any] = {
        "type": "fieldkit-work-order",
        "schema_version": 1,
        "id": "WO-1",
        "issued_at": NOW,
        "vendor": "Voltiq",
        "charger_serials": ["SN1", "SN2"],
        "bundle_id": "vq-ac22-2.5.0",
        "not_before": NOW - dt.timedelta(days=1),
        "not_after": NOW + dt.timedelta(days=1),
    }
    fields.update(changes)
    return WorkOrderBody(**fields)


def test_a_dispatch_signed_work_order_verifies(lab: BundleLab) -> None:
    assert verify_work_order(sign_work_order(_body(), [lab.dispatch]), lab.store_body, NOW).id == "WO-1"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda w: sign_work_order(_body(), [w.release]), "0 of the 1"),  # release keys do not dispatch
        (lambda w: sign_work_order(_body(), [w.unknown]), "0 of the 1"),
        (lambda w: sign_work_order(_body(vendor="Ampero"), [w.dispatch]), "0 of the 1"),  # out of scope
        (lambda w: sign_work_order(_body(), [w.dispatch]).replace(b'"SN2"', b'"SN9"'), "0 of the 1"),
        (
            lambda w: json.dumps(
                {"signed": json.loads(sign_work_order(_body(), [w.dispatch]))["signed"], "signatures": []}
            ).encode(),
            "0 of the 1",
        ),
        (lambda w: b"[1, 2", "malformed"),
    ],
)
def test_forged_or_altered_work_orders_are_refused(lab: BundleLab, make: Any, match: str) -> None:
    with pytest.raises(WorkOrderError, match=match):
        verify_work_order(make(lab), lab.store_body, NOW)


def test_authorize_matches_charger_bundle_and_window() -> None:
    orders = [_body()]
    assert authorize(orders, "SN1", "vq-ac22-2.5.0", NOW, require_work_order=True).allowed
    wrong_bundle = authorize(orders, "SN1", "vq-ac22-9.9.9", NOW, require_work_order=False)
    assert not wrong_bundle.allowed and "is for bundle vq-ac22-2.5.0" in wrong_bundle.reason
    late = authorize(orders, "SN1", "vq-ac22-2.5.0", NOW + dt.timedelta(days=3), require_work_order=False)
    assert not late.allowed and "valid" in late.reason
    assert authorize(orders, "SN7", "x", NOW, require_work_order=False).allowed
    assert not authorize(orders, "SN7", "x", NOW, require_work_order=True).allowed


def test_an_override_needs_a_real_reason() -> None:
    orders = [_body()]
    with pytest.raises(WorkOrderError, match="at least"):
        authorize(orders, "SN1", "other", NOW, require_work_order=False, override_reason="because")
    decision = authorize(
        orders,
        "SN1",
        "other",
        NOW,
        require_work_order=False,
        override_reason="customer reports charger bricked, needs 2.6.0 hotfix",
    )
    assert decision.allowed and decision.overridden
