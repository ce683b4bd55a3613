"""Preflight: every reason not to touch this charger with this bundle, checked before anything is sent.

Refusals: the bundle fails verification against the charger as it reports
itself (model, hardware revision, installed version, anti-rollback floor); a
component the charger does not have; a vehicle charging; a work order that
forbids it; a metrology-relevant bundle without the typed serial. Warning: the
laptop runs on battery with too little charge for the estimated time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.manifest import Manifest
from fieldkit.bundles.semver import Version, is_semver
from fieldkit.bundles.truststore import TrustStoreBody
from fieldkit.bundles.verify import ChargerFacts, VerificationReport, verify_bundle
from fieldkit.bundles.workorder import WorkOrderBody, authorize
from fieldkit.config import Settings
from fieldkit.domain import Capabilities, ChargerIdentity
from fieldkit.updates.install_ways import install_method_for

# Installing, rebooting and the health check, on top of the transfer, in a time estimate.
FIXED_STEPS_S: Final = 120
MIN_BATTERY_PERCENT: Final = 30
# What each unknown safety fact means to the technician, and what confirming it asserts.
UNKNOWN_FACTS: Final = {
    "transaction": "whether a vehicle is charging (check the connectors and the site's back office)",
    "security_version_floor": "the charger's anti-rollback floor (check the release notes: is this a downgrade?)",
    "hardware_revision": "the charger's hardware revision (read it from the rating plate)",
}


@dataclass(frozen=True)
class PreflightCheck:
    name: str
    passed: bool
    severity: Literal["refuse", "warn"]
    reason: str


@dataclass
class PreflightResult:
    checks: list[PreflightCheck]
    report: VerificationReport
    estimate_s: float | None = None  # how long the update should take over this driver's link

    @property
    def refused(self) -> list[PreflightCheck]:
        return [c for c in self.checks if not c.passed and c.severity == "refuse"]

    @property
    def warnings(self) -> list[PreflightCheck]:
        return [c for c in self.checks if not c.passed and c.severity == "warn"]

    @property
    def ok(self) -> bool:
        return not self.refused


def laptop_battery(root: Path = Path("/sys/class/power_supply")) -> tuple[bool, int] | None:
    """(on battery, percent) for the first battery found, or None on mains-only machines."""
    for supply in sorted(root.glob("BAT*")):
        try:
            status = (supply / "status").read_text().strip()
            capacity = int((supply / "capacity").read_text().strip())
        except (OSError, ValueError):
            continue
        return status == "Discharging", capacity
    return None


def charger_facts(identity: ChargerIdentity) -> ChargerFacts:
    """What bundle verification needs to know of a charger, from what it reported about itself."""
    first_component = next(iter(identity.components.values()), None)
    return ChargerFacts(
        model=identity.model,
        hardware_revision=identity.hardware_revision,
        installed_version=first_component.version if first_component else None,
        installed_security_version=identity.security_version_floor,
    )


def _install_method_check(
    manifest: Manifest, identity: ChargerIdentity, capabilities: Capabilities | None
) -> PreflightCheck:
    """Each component has an acceptable method this driver carries out, and the charger's own updater is one."""
    problems = []
    for component in manifest.components:
        info = identity.components.get(component.name)
        owner = info.install_method if info is not None else None
        accepted = ", ".join(f"{m} over {t}" for t, methods in component.ways.items() for m in methods)
        if capabilities is not None and install_method_for(component, capabilities) is None:
            problems.append(
                f"this charger's driver ({capabilities.transport}) cannot install {component.name} "
                f"(the bundle accepts {accepted})"
            )
        elif owner is not None and owner not in component.methods:
            problems.append(f"the bundle installs {component.name} with {accepted}, the charger uses {owner}")
        elif (
            capabilities is not None
            and owner is not None
            and install_method_for(component, capabilities, owner) is None
        ):
            problems.append(f"this charger's driver cannot drive {owner}, the updater that owns {component.name}")
    return PreflightCheck(
        "install-method",
        not problems,
        "refuse",
        "; ".join(problems) if problems else "every component goes to the charger's own updater",
    )


def preflight(
    bundle: Path,
    identity: ChargerIdentity,
    store: TrustStoreBody,
    state: TrustedState,
    settings: Settings,
    work_orders: list[WorkOrderBody],
    confirm_serial: str | None = None,
    override_reason: str | None = None,
    battery: tuple[bool, int] | None = None,
    capabilities: Capabilities | None = None,
    confirmed_unknowns: frozenset[str] = frozenset(),
    allow_reinstall: bool = False,
    allow_older: bool = False,
) -> PreflightResult:
    """``capabilities``: the driver's, for the install methods it can carry out and its link rate."""
    facts = charger_facts(identity)
    report = verify_bundle(bundle, store, state, settings, facts)
    failure = report.failure
    estimate_s: float | None = None
    checks = [
        PreflightCheck(
            "bundle",
            failure is None,
            "refuse",
            "bundle verified for this charger" if failure is None else f"{failure.name}: {failure.message}",
        )
    ]
    manifest = report.manifest
    if manifest is not None and failure is None:
        missing = [c.name for c in manifest.components if c.name not in identity.components]
        checks.append(
            PreflightCheck(
                "components",
                not missing,
                "refuse",
                f"the charger has no component {', '.join(missing)}"
                if missing
                else "every component exists on the charger",
            )
        )
        checks.append(_install_method_check(manifest, identity, capabilities))
        checks.extend(_version_checks(manifest, identity, allow_reinstall, allow_older))
        now = state.read().now
        decision = authorize(
            work_orders, identity.serial, manifest.bundle_id, now, settings.require_work_order, override_reason
        )
        checks.append(PreflightCheck("work-order", decision.allowed, "refuse", decision.reason))
        if manifest.has_metrology_component:
            confirmed = confirm_serial is not None and confirm_serial.strip() == identity.serial
            checks.append(
                PreflightCheck(
                    "metrology",
                    confirmed,
                    "refuse",
                    "metrology-relevant update confirmed by typing the serial"
                    if confirmed
                    else f"metrology-relevant: type the charger serial ({identity.serial}) to confirm",
                )
            )
        estimate_s = estimated_duration_s(manifest, capabilities)
        battery = battery if battery is not None else laptop_battery()
        if battery is not None and battery[0] and battery[1] < MIN_BATTERY_PERCENT:
            checks.append(
                PreflightCheck(
                    "battery",
                    False,
                    "warn",
                    f"laptop on battery at {battery[1]}% for an update estimated at "
                    f"{dt.timedelta(seconds=int(estimate_s))}; plug it in if you can (an interrupted update resumes)",
                )
            )
        checks.extend(_staging_checks(identity, sum(c.size_bytes for c in manifest.components)))
    if identity.transaction_active is not None:
        checks.append(
            PreflightCheck(
                "transaction",
                not identity.transaction_active,
                "refuse",
                "a vehicle is charging: wait until the session ends"
                if identity.transaction_active
                else "no vehicle charging",
            )
        )
    checks.extend(_unknown_checks(identity, confirmed_unknowns))
    return PreflightResult(checks, report, estimate_s)


def version_change(installed: str | None, offered: str) -> Literal["newer", "same", "older", "unknown"]:
    """How ``offered`` relates to the version the charger runs (``unknown`` when either is not a version)."""
    if installed is None or not (is_semver(installed) and is_semver(offered)):
        return "unknown"
    before, after = Version.parse(installed), Version.parse(offered)
    return "same" if after == before else "older" if after < before else "newer"


def _version_checks(
    manifest: Manifest, identity: ChargerIdentity, allow_reinstall: bool, allow_older: bool
) -> list[PreflightCheck]:
    """A reinstall of what runs, or an older version, only as the technician's explicit (audited) choice.

    The anti-rollback floor (security_version) is enforced by the bundle check whatever is chosen here.
    """
    checks = []
    for component in manifest.components:
        current = identity.components.get(component.name)
        installed = current.version if current is not None else None
        change = version_change(installed, component.version)
        if change == "same":
            checks.append(PreflightCheck(
                "reinstall", allow_reinstall, "refuse",
                f"{component.name} {installed} again, as asked (--allow-reinstall)" if allow_reinstall else
                f"{component.name} already runs {installed}: a reinstall only with --allow-reinstall",
            ))  # fmt: skip
        elif change == "older":
            checks.append(PreflightCheck(
                "older-version", allow_older, "refuse",
                f"{component.name} back from {installed} to {component.version}, as asked (--allow-older)"
                if allow_older else
                f"{component.name} runs {installed}, newer than {component.version}: only with --allow-older",
            ))  # fmt: skip
    return checks


# Without a driver to ask, a pessimistic field link (a serial console is slower, and its driver says so).
UNKNOWN_LINK_RATE_BYTES_PER_S: Final = 1_000_000


def estimated_duration_s(manifest: Manifest, capabilities: Capabilities | None) -> float:
    """Seconds an update should take: the transfer at the driver's expected link rate, plus the fixed steps."""
    rate = capabilities.link_rate_bytes_per_s if capabilities else UNKNOWN_LINK_RATE_BYTES_PER_S
    return sum(c.size_bytes for c in manifest.components) / max(rate, 1) + FIXED_STEPS_S


def _unknown_checks(identity: ChargerIdentity, confirmed: frozenset[str]) -> list[PreflightCheck]:
    """A fact the charger cannot report is never assumed safe: the technician confirms it, or nothing starts."""
    checks = []
    for fact in identity.unknown_safety_facts:
        ok = fact in confirmed
        checks.append(
            PreflightCheck(
                f"unknown-{fact}",
                ok,
                "refuse",
                f"the charger cannot tell {UNKNOWN_FACTS[fact]}; confirmed by the technician"
                if ok
                else f"the charger cannot tell {UNKNOWN_FACTS[fact]}: check it on site, then confirm it "
                f"(CLI: --confirm-unknown {fact}; TUI: type the serial at the confirmation)",
            )
        )
    return checks


def _staging_checks(identity: ChargerIdentity, payload_bytes: int) -> list[PreflightCheck]:
    """The images fit where the charger stages them, and the login user may write there."""
    if identity.staging_problem is not None:
        return [PreflightCheck("staging", False, "refuse", identity.staging_problem)]
    free = identity.staging_free_bytes
    if free is None:
        return []
    fits = free >= payload_bytes
    mib = 1024 * 1024
    return [
        PreflightCheck(
            "staging",
            fits,
            "refuse",
            f"{free // mib} MiB free in {identity.staging_dir} for {payload_bytes // mib} MiB of images"
            if fits
            else f"only {free // mib} MiB free in {identity.staging_dir}, the images need {-(-payload_bytes // mib)} "
            "MiB: free space on the charger first",
        )
    ]
