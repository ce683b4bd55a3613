"""Bundle verification, in the one order that never trusts too early.

1. container       bounded read of the ZIP structure (container.py)
2. signatures      signatures over the exact bytes of manifest.json, by usable
                   trusted keys, release threshold met; nothing parsed yet
3. manifest        only now is manifest.json parsed (bounded, schema-checked)
4. authorization   signer scope, X.509 validity at signing time, thresholds
                   again, metrology countersignature where needed
5. freshness       expiry under the clock policy (clock.py)
6. compatibility   model, hardware revision, minimum installed version
7. anti-rollback   security_version against the charger's floor
8. payloads        every payload referenced once; size, then SHA-256 streamed
9. ocpp-signatures the OEM signatures a charger will check itself

Each step either passes or raises BundleRejectedError naming its code; later
steps are then reported as skipped. Steps 6 and 7 are skipped when no charger
facts are given.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.container import MANIFEST_NAME, SIGNATURES_NAME, BundleContainer
from fieldkit.bundles.manifest import Manifest, parse_manifest
from fieldkit.bundles.ocpp import ocpp_signature_problem
from fieldkit.bundles.semver import Version
from fieldkit.bundles.signatures import (
    Signer,
    apply_manifest_constraints,
    evaluate_signer,
    manifest_message,
    parse_signatures,
    threshold_failure,
)
from fieldkit.bundles.truststore import TrustStoreBody
from fieldkit.config import Settings
from fieldkit.errors import BundleRejectedError
from fieldkit.safejson import parse_for_check

CHECKS: Final = (
    "container",
    "signatures",
    "manifest",
    "authorization",
    "freshness",
    "compatibility",
    "anti-rollback",
    "payloads",
    "ocpp-signatures",
)
Status = Literal["passed", "failed", "skipped", "warning"]


@dataclass(frozen=True)
class ChargerFacts:
    """What is known of the target charger; None means "not checked"."""

    model: str | None = None
    hardware_revision: str | None = None
    installed_version: str | None = None
    installed_security_version: int | None = None


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    code: str = ""
    message: str = ""
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.name,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class VerificationReport:
    path: Path
    checks: list[CheckResult] = field(default_factory=list)
    manifest: Manifest | None = None
    signers: list[Signer] = field(default_factory=list)
    payload_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not any(c.status == "failed" for c in self.checks)

    @property
    def failure(self) -> CheckResult | None:
        return next((c for c in self.checks if c.status == "failed"), None)

    def raise_if_invalid(self) -> None:
        failure = self.failure
        if failure is not None:
            raise BundleRejectedError(failure.name, failure.code, failure.message, failure.hint)

    def as_dict(self) -> dict[str, Any]:
        manifest = self.manifest
        return {
            "bundle": str(self.path),
            "valid": self.valid,
            "checks": [c.as_dict() for c in self.checks],
            "signers": [s.as_dict() for s in self.signers],
            "manifest": manifest.model_dump(mode="json", by_alias=True) if manifest else None,
        }


class _Verification:
    """One run of the pipeline; each ``_step_*`` method is one check."""

    def __init__(
        self,
        path: Path,
        store: TrustStoreBody,
        state: TrustedState,
        settings: Settings,
        charger: ChargerFacts | None,
        check_payloads: bool,
    ) -> None:
        self.path = path
        self.store = store
        self.state = state
        self.settings = settings
        self.limits = settings.limits
        self.charger = charger
        self.check_payloads = check_payloads
        self.report = VerificationReport(path)
        self.container: BundleContainer | None = None
        self.manifest_bytes = b""
        self.clock = state.read()

    def run(self) -> VerificationReport:
        steps = {
            "container": self._step_container,
            "signatures": self._step_signatures,
            "manifest": self._step_manifest,
            "authorization": self._step_authorization,
            "freshness": self._step_freshness,
            "compatibility": self._step_compatibility,
            "anti-rollback": self._step_anti_rollback,
            "payloads": self._step_payloads,
            "ocpp-signatures": self._step_ocpp,
        }
        done: set[str] = set()
        for name, step in steps.items():
            try:
                outcome = step()
            except BundleRejectedError as exc:
                self.report.checks.append(CheckResult(exc.check, "failed", exc.code, exc.message, exc.hint))
                done.add(exc.check)
                for later in CHECKS:
                    if later not in done and later != exc.check and CHECKS.index(later) >= CHECKS.index(name):
                        self.report.checks.append(CheckResult(later, "skipped", message="an earlier check failed"))
                return self.report
            self.report.checks.append(outcome)
            done.add(name)
        assert self.report.manifest is not None
        # An authenticated creation time proves "now" is at least that late
        # (minus the skew we tolerate); remember it for the clock policy.
        tolerance = dt.timedelta(seconds=self.settings.clock_skew_tolerance_s)
        self.state.observe_time(min(self.report.manifest.created_at - tolerance, self.clock.now))
        return self.report

    # -- steps ----------------------------------------------------------------

    def _step_container(self) -> CheckResult:
        self.container = BundleContainer.open(self.path, self.limits)
        count = len(self.container.members)
        return CheckResult("container", "passed", message=f"{count} members, canonical ZIP layout")

    def _step_signatures(self) -> CheckResult:
        assert self.container is not None
        signatures_bytes = self.container.read_small(
            SIGNATURES_NAME, self.limits.max_signatures_bytes, "signatures-too-large", "signatures"
        )
        entries = parse_signatures(signatures_bytes, self.limits)
        self.manifest_bytes = self.container.read_small(
            MANIFEST_NAME, self.limits.max_manifest_bytes, "manifest-too-large", "manifest"
        )
        message = manifest_message(self.manifest_bytes)
        self.report.signers = [
            evaluate_signer(entry, message, self.store, self.clock.now, self.limits) for entry in entries
        ]
        failure = threshold_failure(self.report.signers, "release", self.store.threshold("release"), "signatures")
        if failure:
            raise failure
        good = sum(1 for s in self.report.signers if s.usable)
        return CheckResult("signatures", "passed", message=f"{good} of {len(entries)} signatures valid and trusted")

    def _step_manifest(self) -> CheckResult:
        document = parse_for_check(
            self.manifest_bytes,
            "manifest",
            "manifest",
            self.limits.max_manifest_bytes,
            self.limits.max_json_depth,
        )
        self.report.manifest = parse_manifest(document)
        m = self.report.manifest
        return CheckResult("manifest", "passed", message=f"{m.vendor} {m.version} ({m.bundle_id})")

    def _step_authorization(self) -> CheckResult:
        manifest = self.report.manifest
        assert manifest is not None
        signers = self.report.signers
        apply_manifest_constraints(signers, manifest.vendor, manifest.models, manifest.created_at)
        failure = threshold_failure(signers, "release", self.store.threshold("release"), "authorization")
        if failure:
            raise failure
        if manifest.has_metrology_component:
            failure = threshold_failure(signers, "metrology", self.store.threshold("metrology"), "authorization")
            if failure:
                raise failure
            return CheckResult("authorization", "passed", message="release and metrology signatures in scope")
        return CheckResult("authorization", "passed", message="release signatures in scope")

    def _step_freshness(self) -> CheckResult:
        manifest = self.report.manifest
        assert manifest is not None
        now = self.clock.now
        skew = dt.timedelta(seconds=self.settings.clock_skew_tolerance_s)
        if now > manifest.expires_at:
            raise BundleRejectedError(
                "freshness",
                "expired",
                f"the bundle expired on {manifest.expires_at:%Y-%m-%d %H:%M} UTC (now {now:%Y-%m-%d %H:%M} UTC)",
                "get a current bundle from the back office",
            )
        if manifest.created_at > now + skew:
            raise BundleRejectedError(
                "freshness",
                "not-yet-valid",
                f"the bundle was created {manifest.created_at:%Y-%m-%d %H:%M} UTC, after now "
                f"({now:%Y-%m-%d %H:%M} UTC) by more than the {self.settings.clock_skew_tolerance_s} s allowed",
                "check the laptop's date and time",
            )
        if self.clock.went_backwards:
            assert self.clock.last_trusted is not None
            return CheckResult(
                "freshness",
                "warning",
                "clock-went-backwards",
                f"the laptop clock ({self.clock.system_now:%Y-%m-%d %H:%M} UTC) is behind the last trusted "
                f"time ({self.clock.last_trusted:%Y-%m-%d %H:%M} UTC); that time was used instead",
                "set the laptop's clock; fieldkit never lets time run backwards",
            )
        return CheckResult("freshness", "passed", message=f"valid until {manifest.expires_at:%Y-%m-%d} UTC")

    def _step_compatibility(self) -> CheckResult:
        manifest = self.report.manifest
        assert manifest is not None
        facts = self.charger
        if facts is None or facts.model is None:
            return CheckResult("compatibility", "skipped", message="no charger model given")
        row = next((c for c in manifest.compatibility if c.model == facts.model), None)
        if row is None:
            raise BundleRejectedError(
                "compatibility",
                "wrong-model",
                f"the bundle is for {', '.join(manifest.models)}, not {facts.model}",
                "pick the bundle made for this charger model",
            )
        if facts.hardware_revision is not None and facts.hardware_revision not in row.hardware_revisions:
            raise BundleRejectedError(
                "compatibility",
                "wrong-hardware-revision",
                f"the bundle supports {facts.model} hardware revisions {', '.join(row.hardware_revisions)}, "
                f"not {facts.hardware_revision}",
                "pick the bundle made for this hardware revision",
            )
        minimum, installed = row.min_installed_version, facts.installed_version
        if minimum and installed and Version.parse(installed) < Version.parse(minimum):
            raise BundleRejectedError(
                "compatibility",
                "installed-version-too-old",
                f"the charger runs {installed}; this bundle needs at least {minimum}",
                "install the intermediate release first",
            )
        return CheckResult("compatibility", "passed", message=f"made for {facts.model}")

    def _step_anti_rollback(self) -> CheckResult:
        manifest = self.report.manifest
        assert manifest is not None
        floor = self.charger.installed_security_version if self.charger else None
        if floor is None:
            return CheckResult("anti-rollback", "skipped", message="no installed security version given")
        if manifest.security_version < floor:
            raise BundleRejectedError(
                "anti-rollback",
                "downgrade",
                f"security version {manifest.security_version} is below the charger's floor {floor}",
                "the charger would refuse this downgrade; pick a newer bundle",
            )
        return CheckResult(
            "anti-rollback",
            "passed",
            message=f"security version {manifest.security_version} >= {floor}",
        )

    def _step_payloads(self) -> CheckResult:
        manifest, container = self.report.manifest, self.container
        assert manifest is not None
        assert container is not None
        referenced = {c.payload for c in manifest.components}
        for member_name in container.payload_names:
            if member_name not in referenced:
                raise BundleRejectedError(
                    "payloads",
                    "unreferenced-payload",
                    f"{member_name} is in the bundle but not in the manifest",
                    "a bundle may carry nothing the manifest does not describe; ask the publisher",
                )
        for component in manifest.components:
            member = container.members.get(component.payload)
            if member is None:
                raise BundleRejectedError(
                    "payloads",
                    "payload-missing",
                    f"{component.payload} is listed in the manifest but missing",
                    "the bundle is incomplete; get it again",
                )
            if member.size_bytes != component.size_bytes:
                raise BundleRejectedError(
                    "payloads",
                    "payload-size-mismatch",
                    f"{component.payload} is {member.size_bytes} bytes; the manifest says {component.size_bytes}",
                    "the bundle was altered or damaged; get it again",
                )
        if not self.check_payloads:
            return CheckResult("payloads", "skipped", message="payload hashes not checked (quick mode)")
        total = 0
        for component in manifest.components_in_order():
            digest, crc_matches = container.digest(component.payload)
            if not hmac.compare_digest(digest.hex(), component.sha256):
                raise BundleRejectedError(
                    "payloads",
                    "payload-hash-mismatch",
                    f"SHA-256 of {component.payload} does not match the manifest",
                    "the bundle was altered or damaged; get it again",
                )
            if not crc_matches:
                raise BundleRejectedError(
                    "payloads",
                    "crc-mismatch",
                    f"the CRC-32 recorded for {component.payload} was altered",
                    "the bundle is not the one that was published; get it again",
                )
            self.report.payload_sha256[component.name] = digest.hex()
            total += component.size_bytes
        return CheckResult(
            "payloads",
            "passed",
            message=f"{len(manifest.components)} payloads, {total} bytes, SHA-256 ok",
        )

    def _step_ocpp(self) -> CheckResult:
        manifest = self.report.manifest
        assert manifest is not None
        signed = [c for c in manifest.components if c.ocpp is not None]
        if not signed:
            return CheckResult("ocpp-signatures", "skipped", message="no component carries an OCPP signature")
        if not self.check_payloads:
            return CheckResult("ocpp-signatures", "skipped", message="needs payload hashes (quick mode)")
        for component in signed:
            assert component.ocpp is not None
            problem = ocpp_signature_problem(
                component.ocpp,
                bytes.fromhex(self.report.payload_sha256[component.name]),
                self.store,
                self.clock.now,
                self.limits.max_certificate_chain,
            )
            if problem:
                code, text = problem
                raise BundleRejectedError(
                    "ocpp-signatures",
                    code,
                    f"{component.name}: {text}",
                    "the charger would reject this firmware; ask the manufacturer for a correctly signed file",
                )
        return CheckResult("ocpp-signatures", "passed", message=f"{len(signed)} OEM signature(s) valid")


def verify_bundle(
    path: Path,
    store: TrustStoreBody,
    state: TrustedState,
    settings: Settings,
    charger: ChargerFacts | None = None,
    check_payloads: bool = True,
) -> VerificationReport:
    """Run every check on ``path``; never raises for a bad bundle, reports it."""
    return _Verification(path, store, state, settings, charger, check_payloads).run()
