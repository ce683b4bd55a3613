"""Positive controls: every kind of valid bundle passes every check.

Without these, an attack table can pass because everything is refused.
"""

from __future__ import annotations

import datetime as dt

from fieldkit.bundles.verify import CHECKS, ChargerFacts
from tests.support.bundle_lab import EXPIRES, NOW, BundleLab, with_components

AC22_C = ChargerFacts(model="VQ-AC22", hardware_revision="C", installed_version="2.3.0", installed_security_version=5)


def _assert_all_pass(report: object) -> None:
    from fieldkit.bundles.verify import VerificationReport

    assert isinstance(report, VerificationReport)
    assert report.valid, report.failure
    assert [c.name for c in report.checks] == list(CHECKS)


def test_pinned_ed25519_bundle_passes_every_check(lab: BundleLab) -> None:
    report = lab.verify(lab.bundle(), AC22_C)
    _assert_all_pass(report)
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["compatibility"] == statuses["anti-rollback"] == statuses["payloads"] == "passed"
    assert statuses["ocpp-signatures"] == "skipped"


def test_ecdsa_p256_signature_passes(lab: BundleLab) -> None:
    _assert_all_pass(lab.verify(lab.bundle(signers=[lab.release_ec]), AC22_C))


def test_x509_chain_to_pinned_root_passes(lab: BundleLab) -> None:
    report = lab.verify(lab.bundle(signers=[lab.oem_leaf_key], chains={0: [lab.oem_leaf]}), AC22_C)
    _assert_all_pass(report)
    assert report.signers[0].kind == "x509"


def test_metrology_component_with_countersignature_passes(lab: BundleLab) -> None:
    payloads = {"meter": b"M" * 100}
    document = with_components(lab.manifest(payloads), metrology_relevant=True)
    report = lab.verify(lab.bundle(payloads=payloads, manifest=document, signers=[lab.release, lab.metrology]))
    _assert_all_pass(report)


def test_ocpp_signatures_ecdsa_and_rsa_pss_pass(lab: BundleLab) -> None:
    for key, cert in (
        (lab.ocpp_leaf_key, lab.ocpp_leaf),
        (lab.ocpp_rsa_key, lab.ocpp_rsa_leaf),
    ):
        payloads = {"app": b"FIRMWARE" * 100}
        document = with_components(lab.manifest(payloads), ocpp=lab.ocpp_block(payloads["app"], key, cert))
        report = lab.verify(lab.bundle(payloads=payloads, manifest=document))
        _assert_all_pass(report)
        assert {c.name: c.status for c in report.checks}["ocpp-signatures"] == "passed"


def test_two_of_two_release_signatures_meet_a_threshold_of_two(lab: BundleLab) -> None:
    store = lab.store_with(thresholds={"trust-root": 1, "release": 2, "metrology": 1})
    _assert_all_pass(lab.verify(lab.bundle(signers=[lab.release, lab.release2]), store=store))


def test_same_key_twice_does_not_count_twice(lab: BundleLab) -> None:
    # signatures.json forbids a key appearing twice, so the second copy cannot
    # be smuggled in to meet a threshold of two.
    store = lab.store_with(thresholds={"trust-root": 1, "release": 2, "metrology": 1})
    report = lab.verify(lab.bundle(signers=[lab.release, lab.release]), store=store)
    assert report.failure is not None
    assert report.failure.code == "signatures-non-canonical"


def test_one_bad_signature_beside_a_good_one_is_tolerated(lab: BundleLab) -> None:
    report = lab.verify(lab.bundle(signers=[lab.release, lab.unknown]))
    _assert_all_pass(report)
    assert sorted(s.problem or "ok" for s in report.signers) == ["ok", "unknown-key"]


def test_clock_behind_last_trusted_time_warns_and_uses_trusted_time(lab: BundleLab) -> None:
    from fieldkit.bundles.clock import TrustedState
    from fieldkit.bundles.verify import verify_bundle

    state = TrustedState.in_memory(dt.datetime(2025, 6, 1, tzinfo=dt.UTC))  # laptop clock set back
    state.observe_time(NOW)
    report = verify_bundle(lab.bundle(), lab.store_body, state, lab.settings)
    freshness = {c.name: c for c in report.checks}["freshness"]
    assert report.valid
    assert (freshness.status, freshness.code) == ("warning", "clock-went-backwards")


def test_clock_set_back_cannot_revive_an_expired_bundle(lab: BundleLab) -> None:
    from fieldkit.bundles.clock import TrustedState
    from fieldkit.bundles.verify import verify_bundle

    state = TrustedState.in_memory(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    state.observe_time(EXPIRES + dt.timedelta(days=59))  # seen earlier: a newer bundle's time
    report = verify_bundle(lab.bundle(), lab.store_body, state, lab.settings)
    assert report.failure is not None and report.failure.code == "expired"


def test_a_clock_set_back_after_verification_is_caught(lab: BundleLab) -> None:
    from fieldkit.bundles.clock import TrustedState
    from fieldkit.bundles.verify import verify_bundle
    from tests.support.bundle_lab import CREATED

    state = TrustedState.in_memory(NOW)
    assert verify_bundle(lab.bundle(), lab.store_body, state, lab.settings).valid
    state._fixed_now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # the technician sets the clock back
    reading = state.read()
    assert reading.went_backwards
    assert reading.now >= CREATED - dt.timedelta(seconds=lab.settings.clock_skew_tolerance_s)
