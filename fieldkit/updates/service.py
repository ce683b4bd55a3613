"""The update service: everything a front-end does with chargers, bundles and jobs.

The CLI and the TUI both go through this and never hold a driver: identify a
charger, list and check the bundles in the library, ``check`` an update
(identify + preflight + estimate), ``start`` it (the same again right before
acting, the refusal or the technician's confirmations audited, a journaled
job), resume, cancel, roll back. UI-agnostic and free of output; long
operations are async or meant for a worker thread. Drivers come from the
registry by address; the job owns the one it runs on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from fieldkit.audit.entry import BundleRef
from fieldkit.bundles import trustops
from fieldkit.bundles.clock import STATE_NAME, TrustedState
from fieldkit.bundles.manifest import Manifest
from fieldkit.bundles.truststore import TrustStoreBody
from fieldkit.bundles.verify import VerificationReport, verify_bundle
from fieldkit.bundles.workorder import load_work_orders
from fieldkit.config import Settings, data_dir
from fieldkit.discovery.ssh import Discovered, discover_with_drivers
from fieldkit.domain import Capabilities, ChargerIdentity
from fieldkit.drivers.base import Driver
from fieldkit.drivers.registry import DriverOptions, driver_for, factories, known_hosts_path, scheme_of
from fieldkit.errors import FieldkitError, UsageError
from fieldkit.fsutil import atomic_output
from fieldkit.updates.auditing import AuditFields, charger_ref_of_identity, refusal_entry
from fieldkit.updates.engine import AuditHook, UpdateJob
from fieldkit.updates.install_ways import install_methods_for
from fieldkit.updates.journal import JobRecord, Journal
from fieldkit.updates.preflight import PreflightResult, charger_facts, preflight

BUNDLE_SUFFIX: Final = ".fwbundle"


def default_bundles_dir() -> Path:
    """offline_bundles/ in the working directory if there is one, else the one in fieldkit's data directory."""
    here = Path("offline_bundles")
    return here if here.is_dir() else data_dir() / "offline_bundles"


@dataclass(frozen=True)
class BundleSummary:
    """A bundle in the library and what verification says of it (not yet for any one charger)."""

    path: Path
    valid: bool
    reason: str
    manifest: Manifest | None
    signers: list[str] = field(default_factory=list)
    code: str = "valid"  # the refusal code (expired, downgrade, ...) when not valid

    @property
    def title(self) -> str:
        if self.manifest is None:
            return self.path.name
        return f"{self.manifest.vendor} {self.manifest.version} ({self.manifest.bundle_id})"

    def compatible_with(self, identity: ChargerIdentity) -> bool:
        if self.manifest is None:
            return False
        return any(
            c.model == identity.model and identity.hardware_revision in c.hardware_revisions
            for c in self.manifest.compatibility
        )


def summarize(report: VerificationReport) -> BundleSummary:
    failure = report.failure
    return BundleSummary(
        report.path,
        failure is None,
        "valid" if failure is None else f"{failure.name}: {failure.message}",
        report.manifest,
        [s.name or s.key_id[:16] for s in report.signers if s.problem is None],
        "valid" if failure is None else failure.code,
    )


class PreflightRefusedError(FieldkitError):
    exit_code = 13
    default_hint = "fix what it names, then retry"

    def __init__(self, message: str, result: PreflightResult, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.result = result


class EventRecorder(Protocol):
    """Writes one audit entry of ``kind`` (the CLI's and the TUI's recorders both are one)."""

    def __call__(self, action: str, **fields: AuditFields) -> None: ...


@dataclass(frozen=True)
class Confirmations:
    """What the technician confirmed for an update; each one is audited when the update starts."""

    serial: str | None = None  # typed, for a metrology-relevant bundle
    override_reason: str | None = None  # proceed despite the work orders
    unknown_facts: frozenset[str] = frozenset()  # facts the charger cannot report, checked on site
    allow_reinstall: bool = False  # install the version the charger already runs
    allow_older: bool = False  # install an older version (never below the anti-rollback floor)


@dataclass(frozen=True)
class UpdateCheck:
    """One charger, one bundle: what it is, what its driver can do, and what preflight says."""

    address: str
    identity: ChargerIdentity
    capabilities: Capabilities
    preflight: PreflightResult

    @property
    def ok(self) -> bool:
        return self.preflight.ok and self.preflight.report.manifest is not None


class UpdateService:
    def __init__(
        self,
        settings: Settings,
        trust_store: Path,
        bundles_dir: Path,
        ssh_key: Path | None = None,
        accept_new_host_key: bool = False,
        journal: Journal | None = None,
        confirm_host_key: Callable[[str, str], bool] | None = None,
        trust_store_given: bool = True,
    ) -> None:
        self.settings = settings
        self.trust_store = trust_store
        self.trust_store_given = trust_store_given  # False: the default store, which a journaled job may override
        self.bundles_dir = bundles_dir
        self.ssh_key = ssh_key
        self.accept_new_host_key = accept_new_host_key
        self.journal = journal or Journal()
        self.confirm_host_key = confirm_host_key
        self.state = TrustedState(data_dir() / STATE_NAME)

    # -- chargers -------------------------------------------------------------------

    @property
    def known_hosts_file(self) -> Path:
        """Where chargers' SSH host keys are pinned."""
        return known_hosts_path()

    @property
    def options(self) -> DriverOptions:
        """The link options this session was started with (key, host-key policy)."""
        return DriverOptions(self.ssh_key, self.accept_new_host_key, self.confirm_host_key)

    def _driver(self, address: str, options: DriverOptions | None = None) -> Driver:
        return driver_for(address, self.settings, options or self.options)

    def reaches(self, address: str) -> bool:
        """Is there a driver for this address's scheme (fieldkit's own, or one a package added)?"""
        scheme = scheme_of(address)
        return bool(scheme) and scheme in factories()

    async def identify(self, address: str) -> ChargerIdentity:
        driver = self._driver(address)
        try:
            return await driver.identify()
        finally:
            driver.close()

    async def discover(self, targets: list[str], user: str) -> list[Discovered]:
        """Find chargers among ``targets`` and identify each through its driver."""
        return await discover_with_drivers(targets, self.settings, user, self.options)

    async def rollback(self, address: str) -> tuple[ChargerIdentity, ChargerIdentity]:
        """Abandon an installed image that has not been committed; (before, after).

        With nothing pending the charger refuses (DeviceRefusedError) and nothing changes.
        """
        driver = self._driver(address)
        try:
            before = await driver.identify()
            unknown = [name for name, c in before.components.items() if c.install_method is None]
            if unknown:
                raise UsageError(
                    f"{before.serial} does not say which updater owns {', '.join(unknown)}",
                    "roll back with the charger's own updater, or resume the job that installed it",
                )
            # A job left unfinished on this charger knows what ran before it: the surest guide back.
            job = next((r for r in self.journal.unfinished() if r.charger_address == address), None)
            await driver.rollback(
                {name: str(c.install_method) for name, c in before.components.items()},
                job.from_versions if job is not None else None,
            )
            return before, await driver.identify()
        finally:
            driver.close()

    # -- bundles ----------------------------------------------------------------------

    def trust_store_body(self) -> TrustStoreBody:
        return trustops.open_store(self.trust_store, self.settings.limits, self.state).body

    def bundle_paths(self) -> list[Path]:
        if not self.bundles_dir.is_dir():
            return []
        return sorted(p for p in self.bundles_dir.iterdir() if p.suffix == BUNDLE_SUFFIX and p.is_file())

    def check_bundle(self, path: Path, identity: ChargerIdentity | None = None) -> BundleSummary:
        facts = charger_facts(identity) if identity is not None else None
        return summarize(verify_bundle(path, self.trust_store_body(), self.state, self.settings, facts))

    def list_bundles(self) -> list[BundleSummary]:
        return [self.check_bundle(path) for path in self.bundle_paths()]

    def import_bundle(self, source: Path) -> BundleSummary:
        """Copy a verified bundle into the library; a bundle that fails verification is not copied."""
        summary = self.check_bundle(source)
        if not summary.valid:
            raise UsageError(f"{source.name} was not imported: {summary.reason}", "import only bundles that verify")
        target = self.bundles_dir / source.name
        if target.exists():
            raise UsageError(f"{target} already exists", "remove or rename the one in the library first")
        self.bundles_dir.mkdir(parents=True, exist_ok=True)
        with atomic_output(target) as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        return self.check_bundle(target)

    # -- jobs --------------------------------------------------------------------------

    def preflight(
        self,
        bundle: Path,
        identity: ChargerIdentity,
        capabilities: Capabilities,
        confirmations: Confirmations = Confirmations(),
    ) -> PreflightResult:
        store = self.trust_store_body()
        return preflight(
            bundle,
            identity,
            store,
            self.state,
            self.settings,
            load_work_orders(store, self.state.read().now),
            confirmations.serial,
            confirmations.override_reason,
            capabilities=capabilities,
            confirmed_unknowns=confirmations.unknown_facts,
            allow_reinstall=confirmations.allow_reinstall,
            allow_older=confirmations.allow_older,
        )

    async def check(self, address: str, bundle: Path, confirmations: Confirmations = Confirmations()) -> UpdateCheck:
        """Identify the charger and run preflight for ``bundle``; nothing is sent to it, nothing audited."""
        driver = self._driver(address)
        try:
            return await self._check(driver, address, bundle, confirmations)
        finally:
            driver.close()

    async def _check(self, driver: Driver, address: str, bundle: Path, confirmations: Confirmations) -> UpdateCheck:
        identity = await driver.identify()
        result = await asyncio.to_thread(self.preflight, bundle, identity, driver.capabilities, confirmations)
        return UpdateCheck(address, identity, driver.capabilities, result)

    @staticmethod
    def refused(check: UpdateCheck, bundle: Path, record_event: EventRecorder) -> PreflightRefusedError:
        """Audit preflight's refusal (`update.refused`); returns the error to raise."""
        refusal = refusal_entry(check.preflight, check.identity, check.address, bundle)
        record_event("update.refused", **refusal)
        return PreflightRefusedError(f"preflight refused the update: {refusal['error']}", check.preflight)

    async def start(
        self,
        address: str,
        bundle: Path,
        confirmations: Confirmations,
        record_event: EventRecorder,
        audit: AuditHook | None,
    ) -> UpdateJob:
        """Check again right before acting (a vehicle may have plugged in since), then journal a new job.

        A refusal is audited and raised (PreflightRefusedError); what the
        technician confirmed (unknown facts, a work-order override) is audited
        before the job starts. The returned job owns the charger's driver.
        """
        driver = self._driver(address)
        try:
            check = await self._check(driver, address, bundle, confirmations)
            identity, manifest = check.identity, check.preflight.report.manifest
            if not check.ok or manifest is None:
                raise self.refused(check, bundle, record_event)
            charger, bundle_ref = charger_ref_of_identity(identity, address), BundleRef(bundle_id=manifest.bundle_id)
            confirmed = [f for f in identity.unknown_safety_facts if f in confirmations.unknown_facts]
            if confirmed:
                note = "the technician confirmed what the charger cannot report: " + ", ".join(confirmed)
                record_event("update.unknown-confirmed", charger=charger, bundle=bundle_ref, note=note)
            chosen = [c.reason for c in check.preflight.checks if c.name in ("reinstall", "older-version")]
            if chosen:
                record_event("update.version-choice", charger=charger, bundle=bundle_ref, note="; ".join(chosen))
            if confirmations.override_reason:
                record_event(
                    "workorder.override", charger=charger, bundle=bundle_ref, note=confirmations.override_reason
                )
            return self._create_job(address, bundle, identity, manifest, driver, audit)
        except BaseException:
            driver.close()
            raise

    def _create_job(
        self,
        address: str,
        bundle: Path,
        identity: ChargerIdentity,
        manifest: Manifest,
        driver: Driver,
        audit: AuditHook | None,
    ) -> UpdateJob:
        """Journal a new job (Planned) and return the engine that runs it.

        Refused while the charger has an unfinished job: two jobs driving one
        charger's slots would undo each other.
        """
        for other in self.journal.unfinished():
            if other.charger_address == address or (identity.serial and other.charger_serial == identity.serial):
                raise UsageError(
                    f"{identity.serial or address} has an unfinished job {other.job_id} (in {other.state})",
                    f"finish it first: `fieldkit update --resume --job {other.job_id}`, or roll it back from the "
                    "recovery screen",
                )
        components = manifest.components_in_order()
        record = self.journal.create(
            JobRecord(
                charger_address=address,
                charger_serial=identity.serial,
                charger_vendor=identity.vendor,
                charger_model=identity.model,
                charger_hardware_revision=identity.hardware_revision,
                bundle_path=str(bundle.resolve()),
                bundle_id=manifest.bundle_id,
                components=[c.name for c in components],
                from_versions={c.name: identity.components[c.name].version for c in components},
                to_versions={c.name: c.version for c in components},
                link_options=self.options.journaled(),
                install_methods=install_methods_for(components, driver.capabilities, identity),
                trust_store=str(self.trust_store.resolve()),
                baseline_meter_wh=identity.meter_wh,
            )
        )
        return self._job(record, manifest, driver, audit)

    def _job(self, record: JobRecord, manifest: Manifest, driver: Driver, audit: AuditHook | None) -> UpdateJob:
        options = self.options.resumed_with(record.link_options)
        return UpdateJob(
            record,
            manifest,
            driver,
            self.journal,
            audit,
            self.settings.limits,
            open_driver=lambda address: self._driver(address, options),
        )

    def unfinished(self) -> list[JobRecord]:
        return self.journal.unfinished()

    def unfinished_for(self, address: str | None = None, job_id: str | None = None) -> list[JobRecord]:
        """The interrupted jobs to resume: one job, one charger's, or all of them."""
        if job_id is not None:
            record = self.journal.load(job_id)
            return [] if record.finished else [record]
        return [r for r in self.journal.unfinished() if address is None or r.charger_address == address]

    def resume_job(self, record: JobRecord, audit: AuditHook | None) -> UpdateJob:
        """The engine for an interrupted job, after authenticating its bundle again.

        With the trust store the job was started with (journaled), unless this
        service was given one explicitly.
        """
        store_path = self.trust_store
        if not self.trust_store_given and record.trust_store:
            store_path = Path(record.trust_store)
        store = trustops.open_store(store_path, self.settings.limits, self.state).body
        report = verify_bundle(Path(record.bundle_path), store, self.state, self.settings)
        report.raise_if_invalid()
        manifest = report.manifest
        assert manifest is not None
        if manifest.bundle_id != record.bundle_id:
            raise UsageError(
                f"{record.bundle_path} is no longer bundle {record.bundle_id}",
                "put the original bundle back to resume this job",
            )
        if audit is not None:
            audit(record, "Resumed", f"resumed from {record.state}")
        driver = self._driver(record.charger_address, self.options.resumed_with(record.link_options))
        return self._job(record, manifest, driver, audit)


def job_age(record: JobRecord) -> dt.timedelta | None:
    """How long ago the job last changed state."""
    if not record.history:
        return None
    try:
        last = dt.datetime.fromisoformat(str(record.history[-1]["at"]))
    except (KeyError, ValueError):
        return None
    return dt.datetime.now(dt.UTC) - last
