"""What a charger's helper programs print is input from outside: typed, bounded, refused in one line."""

from __future__ import annotations

from typing import Any

import pytest

from fieldkit.drivers.helpers_protocol import HelperIdentity, HelperStatus, parse_answer
from fieldkit.errors import DeviceRefusedError

IDENTITY: dict[str, Any] = {
    "vendor": "Voltiq",
    "model": "VQ-AC22",
    "hardware_revision": "C",
    "serial": "SN-1",
    "components": {"rootfs": {"running_version": "2.3.0", "active_slot": "A", "state": "committed"}},
    "security_version_floor": None,
    "transaction_active": None,
    "meter_wh": 12,
    "connectors": ["Available"],
    "a_field_from_a_newer_charger": {"ignored": True},
}


def test_a_well_formed_identity_keeps_its_unknowns_unknown() -> None:
    identity = parse_answer(HelperIdentity, "charger-identity", IDENTITY)
    assert identity.security_version_floor is None and identity.transaction_active is None
    assert identity.components["rootfs"].running_version == "2.3.0"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vendor": 7}, "vendor"),
        ({"serial": "S" * 5000}, "serial"),
        ({"meter_wh": 10**5000}, "meter_wh"),
        ({"meter_wh": -1}, "meter_wh"),
        ({"transaction_active": "maybe"}, "transaction_active"),
        ({"components": {"rootfs": {"running_version": "1", "state": "half-done"}}}, "components.rootfs.state"),
        ({"components": {f"c{i}": {"running_version": None} for i in range(65)}}, "components"),
        ({"connectors": "Available"}, "connectors"),
    ],
)
def test_a_hostile_identity_is_refused_in_one_line_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DeviceRefusedError) as refused:
        parse_answer(HelperIdentity, "charger-identity", {**IDENTITY, **change})
    assert field in refused.value.message and "\n" not in refused.value.message
    assert refused.value.message.startswith("`charger-identity` answered in a shape")


def test_a_status_that_is_not_an_object_is_refused() -> None:
    answers: list[object] = [[], "ok", None, {"connectors": [{"id": 1}], "meter_wh": 0, "components": {}}]
    for hostile in answers:
        with pytest.raises(DeviceRefusedError, match="charger-status"):
            parse_answer(HelperStatus, "charger-status", hostile)
