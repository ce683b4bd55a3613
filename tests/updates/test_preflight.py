"""Preflight refusals that need no charger on the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fieldkit.bundles.clock import TrustedState
from fieldkit.domain import Capabilities, ChargerIdentity, ComponentInfo, Resume, Revert, Verification
from fieldkit.updates.preflight import laptop_battery, preflight
from tests.support.bundle_lab import NOW, BundleLab

IDENTITY = ChargerIdentity(
    vendor="Voltiq",
    model="VQ-AC22",
    hardware_revision="C",
    serial="SN-P",
    address="ssh://root@charger",
    components={"rootfs": ComponentInfo("rootfs", "2.3.0", "A", "committed")},
    security_version_floor=4,
    transaction_active=False,
)


def _run(lab: BundleLab, **kwargs: Any) -> list[tuple[str, bool, str]]:
    result = preflight(lab.bundle(), IDENTITY, lab.store_body, TrustedState.in_memory(NOW), lab.settings, [], **kwargs)
    return [(c.name, c.passed, c.severity) for c in result.checks]


def _capabilities(install_methods: set[str], link_rate_bytes_per_s: int = 5_000_000) -> Capabilities:
    return Capabilities(
        "ssh",
        frozenset(install_methods),
        Resume.RESTART,
        Verification.STREAMED_HASH,
        trial_boot=False,
        revert=Revert.NONE,
        health_check=False,
        link_rate_bytes_per_s=link_rate_bytes_per_s,
    )


def test_a_clean_preflight_passes_every_check(lab: BundleLab) -> None:
    assert all(passed for _, passed, _ in _run(lab, capabilities=_capabilities({"rauc"})))


def test_an_install_method_the_driver_cannot_carry_out_is_refused(lab: BundleLab) -> None:
    checks = _run(lab, capabilities=_capabilities({"swupdate"}))
    assert ("install-method", False, "refuse") in checks


def test_the_time_estimate_follows_the_drivers_link_rate(lab: BundleLab) -> None:
    bundle = lab.bundle(payloads={"rootfs": b"R" * 1_000_000})

    def estimate(rate: int) -> float:
        result = preflight(
            bundle,
            IDENTITY,
            lab.store_body,
            TrustedState.in_memory(NOW),
            lab.settings,
            [],
            capabilities=_capabilities({"rauc"}, rate),
        )
        assert result.estimate_s is not None
        return result.estimate_s

    serial_console, ethernet = estimate(10_000), estimate(10_000_000)
    assert serial_console - ethernet == pytest.approx(1_000_000 / 10_000 - 1_000_000 / 10_000_000)


def test_low_battery_only_warns(lab: BundleLab) -> None:
    checks = _run(lab, battery=(True, 12))
    assert ("battery", False, "warn") in checks
    assert all(passed for name, passed, _ in checks if name != "battery")


def test_battery_is_read_from_sysfs(tmp_path: Path) -> None:
    root = tmp_path
    (root / "BAT0").mkdir()
    (root / "BAT0" / "status").write_text("Discharging\n")
    (root / "BAT0" / "capacity").write_text("17\n")
    assert laptop_battery(root) == (True, 17)
    assert laptop_battery(root / "none") is None


def test_a_component_the_charger_updates_with_another_updater_is_refused(lab: BundleLab) -> None:
    mender_owned = ChargerIdentity(
        **{
            **IDENTITY.__dict__,
            "components": {"rootfs": ComponentInfo("rootfs", "2.3.0", "A", "committed", install_method="mender")},
        }
    )
    result = preflight(lab.bundle(), mender_owned, lab.store_body, TrustedState.in_memory(NOW), lab.settings, [])
    check = next(c for c in result.checks if c.name == "install-method")
    assert not check.passed
    assert check.reason == "the bundle installs rootfs with rauc over ssh, the charger uses mender"
