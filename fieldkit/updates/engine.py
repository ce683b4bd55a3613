"""Running an update job: the state machine, driven step by step from its journal.

Each step first journals the state it begins, then acts. A job interrupted at
any point (link lost, laptop crashed or closed) is resumed by running it again
from its journal: every step is written so that repeating it is safe, and the
steps that may or may not have completed (activation, reboot) ask the charger
what is true before acting again.

Progress is an async iterator of events; the CLI renders them as a progress
bar, the TUI as messages. Components install in manifest order; a failure in
a later component rolls back the earlier ones on that charger.

The engine branches on what the driver declares it can do (its
``Capabilities``): the verification it runs is what the audit trail records;
without a trial boot there is nothing to commit; without a health check the
running versions are the only proof; a reboot may hand the job to another
driver at a new address (a recovery bootloader handing over to the system it
wrote). The job owns its driver and closes it when ``run`` ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fieldkit.bundles.container import BundleContainer
from fieldkit.bundles.manifest import Manifest
from fieldkit.config import Limits
from fieldkit.domain import Capabilities, ChargerIdentity, HealthReport, PayloadSource
from fieldkit.drivers.base import Driver
from fieldkit.errors import DeviceRefusedError, FieldkitError, TransportError
from fieldkit.updates.install_ways import install_methods_for
from fieldkit.updates.journal import JobRecord, Journal, JsonValue, StepChanges
from fieldkit.updates.states import JobState

PROGRESS_INTERVAL_S = 0.25
JOURNAL_PROGRESS_INTERVAL_S = 1.0


class JobCancelledError(FieldkitError):
    exit_code = 130
    default_hint = "the job is journaled; continue it with `fieldkit update --resume`"


class RollbackUnconfirmedError(FieldkitError):
    exit_code = 15
    default_hint = "the charger did not come back on its previous version; open the recovery screen"


@dataclass(frozen=True)
class ProgressEvent:
    job_id: str
    state: JobState
    component: str | None
    bytes_done: int
    bytes_total: int
    rate_bytes_per_s: float
    eta_s: float | None
    message: str = ""
    health: HealthReport | None = None  # the latest reading while the charger proves itself


AuditHook = Callable[[JobRecord, str, str], None]  # (job, status, note)


DriverOpener = Callable[[str], Driver]  # a charger address -> a driver for it (the registry)


class UpdateJob:
    def __init__(
        self,
        record: JobRecord,
        manifest: Manifest,
        driver: Driver,
        journal: Journal,
        audit: AuditHook | None = None,
        limits: Limits | None = None,
        open_driver: DriverOpener | None = None,
    ) -> None:
        self.record = record
        self.manifest = manifest
        self.driver = driver
        self.open_driver = open_driver  # for a hand-over to another address after a reboot
        self.journal = journal
        self.audit = audit
        self.limits = limits or Limits()
        self.components = manifest.components_in_order()
        self._cancelled = False
        # True once this run journaled the current state itself: the step has not acted yet, so
        # there is nothing to ask the charger about. False for a state read back from the journal.
        self._state_is_ours = False
        self._transfer_bytes = 0  # sent by this run (not counting a resumed prefix), for the rate
        self._transfer_started: float | None = None  # when the transfer now running began sending
        self._transfer_seconds = 0.0  # sending time of transfers that ended: the rate is the link's, not the job's
        self._last_sent = 0

    def cancel(self) -> None:
        """Stop at the next safe point.

        Before anything is installed (transfer included, mid-stream) the job stops
        with JobCancelledError and stays resumable; the charger is untouched.
        Once installing has begun, stopping would leave a half-updated charger,
        so the job rolls back to the previous versions instead. A job whose new
        image already passed its health check commits.
        """
        self._cancelled = True

    def _honour_cancel(self) -> bool:
        """Act on a pending cancel at a step boundary; True when the job changed course."""
        step = self.record.current
        if step in (JobState.PLANNED, JobState.DOWNLOADING, JobState.DOWNLOADED, JobState.SIGNATURE_VERIFIED):
            raise JobCancelledError(f"update cancelled in {step.value}, before anything was installed")
        if step in (JobState.INSTALLING, JobState.INSTALL_REBOOTING):
            self._cancelled = False
            reason = "cancelled by the technician after installing began"
            self._go(JobState.INSTALLATION_FAILED, reason, error=reason)
            return True
        return False

    def _payload(self, index: int) -> PayloadSource:
        component = self.components[index]
        container = BundleContainer.open(Path(self.record.bundle_path), self.limits)
        member = container.members[component.payload]
        return PayloadSource(container.path, member.data_offset, member.size_bytes, component.sha256, component.version)

    def _bytes_before(self, index: int) -> int:
        return sum(c.size_bytes for c in self.components[:index])

    def _event(self, message: str = "", health: HealthReport | None = None) -> ProgressEvent:
        record = self.record
        sending = time.monotonic() - self._transfer_started if self._transfer_started is not None else 0.0
        elapsed = self._transfer_seconds + sending
        rate = self._transfer_bytes / elapsed if elapsed > 0 else 0.0
        remaining = record.bytes_total - record.bytes_done if record.current == JobState.DOWNLOADING else 0
        component = self.components[min(record.component_index, len(self.components) - 1)].name
        return ProgressEvent(
            record.job_id,
            record.current,
            component,
            record.bytes_done,
            record.bytes_total,
            rate,
            remaining / rate if rate > 0 and remaining > 0 else None,
            message,
            health,
        )

    def _go(
        self,
        target: JobState,
        note: str = "",
        history_extra: Mapping[str, JsonValue] | None = None,
        *,
        error: str | None = None,
        bytes_total: int | None = None,
        component_index: int | None = None,
    ) -> None:
        changes = StepChanges(error, bytes_total, component_index)
        self.journal.transition(self.record, target, history_extra, changes)
        self._state_is_ours = True
        if self.audit is not None:
            self.audit(self.record, target.value, note)

    @property
    def capabilities(self) -> Capabilities:
        return self.driver.capabilities

    def close(self) -> None:
        """Let go of the charger's link; safe to call twice."""
        self.driver.close()

    async def run(self) -> AsyncIterator[ProgressEvent]:
        """Run the job to its end (or to the next interruption); the driver is closed afterwards."""
        try:
            async for event in self._run():
                yield event
        finally:
            self.close()

    async def _run(self) -> AsyncIterator[ProgressEvent]:
        record = self.record
        if record.current == JobState.PLANNED:
            missing = self._without_install_method()
            if missing:
                error = f"this charger's driver cannot install {', '.join(missing)} in any way the bundle accepts"
                self._go(JobState.REFUSED, error, error=error)
                yield self._event(error)
                return
            self._go(JobState.DOWNLOADING, bytes_total=sum(c.size_bytes for c in self.components))
        yield self._event("started" if len(record.history) <= 2 else "resumed")
        while not record.finished:
            if self._cancelled and self._honour_cancel():
                yield self._event("cancelled: rolling back")
                continue
            step = record.current
            component = self.components[record.component_index]
            try:
                if step == JobState.DOWNLOADING:
                    async for event in self._download(record.component_index):
                        yield event
                    # What this run actually sent: after a resume, only what the charger lacked.
                    self._go(JobState.DOWNLOADED, component.name, {"bytes_sent": self._last_sent})
                elif step == JobState.DOWNLOADED:
                    try:
                        checked = await self.driver.verify(component.name, self._payload(record.component_index))
                    except DeviceRefusedError as exc:
                        self._go(JobState.INSTALL_VERIFICATION_FAILED, exc.message, error=exc.message)
                        continue
                    # The audit trail names the verification that actually ran, not the state's name.
                    verification = {"verification": self.capabilities.verification.name.lower()}
                    self._go(JobState.SIGNATURE_VERIFIED, checked, verification)
                elif step == JobState.SIGNATURE_VERIFIED:
                    self._go(JobState.INSTALLING, component.name)
                elif step == JobState.INSTALLING:
                    await self._install(record.component_index)
                elif step == JobState.INSTALL_REBOOTING:
                    async for event in self._reboot_and_check():
                        yield event
                elif step == JobState.INSTALLED:
                    await self._commit()
                elif step in (JobState.INSTALLATION_FAILED, JobState.INSTALL_VERIFICATION_FAILED):
                    self._go(JobState.ROLLING_BACK, record.error or "")
                elif step == JobState.ROLLING_BACK:
                    await self._roll_back()
            except DeviceRefusedError as exc:
                if record.current in (JobState.INSTALLING, JobState.INSTALL_REBOOTING, JobState.DOWNLOADING):
                    self._go(JobState.INSTALLATION_FAILED, exc.message, error=exc.message)
                elif record.current == JobState.INSTALLED and not self._running_expected(await self.driver.identify()):
                    # The trial ended before the commit (a power cut spent the last boot attempt and the
                    # bootloader went back): nothing new runs to commit, so the job ends as a rollback.
                    error = f"the charger went back to its previous image before the commit: {exc.message}"
                    self._go(JobState.INSTALLATION_FAILED, error, error=error)
                else:
                    raise
            yield self._event()

    async def _download(self, index: int) -> AsyncIterator[ProgressEvent]:
        record = self.record
        before = self._bytes_before(index)
        payload = self._payload(index)
        seen: dict[str, float] = {"position": -1.0, "journaled_at": time.monotonic()}

        def progress(position: int) -> None:
            if self._cancelled:
                raise JobCancelledError("update cancelled during the transfer, before anything was installed")
            if seen["position"] < 0:  # first report: the transfer (re)starts here
                self._transfer_started = time.monotonic()
            else:
                self._transfer_bytes += int(position - seen["position"])
            seen["position"] = position
            record.bytes_done = before + position

        task = asyncio.create_task(self.driver.transfer(self.components[index].name, payload, progress))
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_INTERVAL_S)
            if time.monotonic() - seen["journaled_at"] >= JOURNAL_PROGRESS_INTERVAL_S:
                self.journal.save(record)  # bytes acknowledged so far: a hint for the progress bar on resume
                seen["journaled_at"] = time.monotonic()
            yield self._event()
        try:
            self._last_sent = task.result()
        finally:
            if self._transfer_started is not None:  # the rate shown afterwards is this transfer's, kept
                self._transfer_seconds += time.monotonic() - self._transfer_started
                self._transfer_started = None
        record.bytes_done = before + payload.size_bytes

    async def _install(self, index: int) -> None:
        component = self.components[index]
        installed: bool | None = False
        if not self._state_is_ours:  # resumed: the earlier run may have installed it already
            installed = await self.driver.installed(component.name, component.version)
        if not installed:  # no, or the charger cannot tell: install (again), which every driver allows
            await self.driver.activate(component.name, component.sha256, self._install_methods()[component.name])
        if index + 1 < len(self.components):
            self._go(JobState.DOWNLOADING, f"{component.name} installed", component_index=index + 1)
        else:
            self._go(JobState.INSTALL_REBOOTING, f"{component.name} installed")

    def _running_expected(self, identity: ChargerIdentity) -> bool:
        return all(
            identity.components.get(c.name) is not None and identity.components[c.name].version == c.version
            for c in self.components
        )

    async def _reboot_and_check(self) -> AsyncIterator[ProgressEvent]:
        # Resumed: the earlier run may have rebooted already; a second reboot would cost a boot attempt.
        if self._state_is_ours or not self._running_expected(await self.driver.identify()):
            handed_to = await self.driver.reboot()
            if handed_to is not None and handed_to != self.record.charger_address:
                self._hand_over(handed_to)
        expected = {c.name: c.version for c in self.components}
        if not self.capabilities.health_check:
            await self._check_versions_only(expected)
            return
        readings: list[HealthReport] = []

        def on_poll(reading: HealthReport) -> bool:  # called from the driver's thread: store and answer only
            readings[:] = [reading]
            return not self._cancelled

        check = asyncio.create_task(
            self.driver.health(expected, baseline_meter_wh=self.record.baseline_meter_wh, on_poll=on_poll)
        )
        while not check.done():
            await asyncio.wait({check}, timeout=PROGRESS_INTERVAL_S)
            if readings and not check.done():
                yield self._event(f"health check: {readings[0].detail}", health=readings[0])
        report = check.result()
        if report.healthy:
            self._go(JobState.INSTALLED, report.detail)
        else:
            self._go(JobState.INSTALLATION_FAILED, report.detail, error=f"health check failed: {report.detail}")

    def _hand_over(self, address: str) -> None:
        """Continue the job through the driver for ``address`` (journaled first, so a resume goes there too)."""
        if self.open_driver is None:
            raise FieldkitError(
                f"the charger now answers at {address}, and this job cannot open a driver there",
                f"resume the job: `fieldkit update --resume --job {self.record.job_id}`",
            )
        record = self.record
        handed_over: JsonValue = {"from": record.charger_address, "to": address}
        record.charger_address = address
        self.driver.close()
        self.driver = self.open_driver(address)
        # The new driver may speak another transport: the bundle's ways over it decide commit and roll back.
        chosen = install_methods_for(self.components, self.capabilities, None)
        record.install_methods = {**record.install_methods, **chosen}
        self.journal.annotate(record, {"handed_over": handed_over})

    async def _check_versions_only(self, expected: dict[str, str]) -> None:
        """No health check on this charger: the versions it runs are the only proof, and say so."""
        identity = await self.driver.identify()
        running = {
            name: identity.components[name].version if name in identity.components else None for name in expected
        }
        if all(version is None for version in running.values()):
            self._go(
                JobState.INSTALLED, "no health check on this charger, and it does not report versions: unconfirmed"
            )
        elif running == expected:
            self._go(JobState.INSTALLED, f"no health check on this charger; it runs {expected}")
        else:
            error = f"the charger runs {running} after the reboot, not {expected}"
            self._go(JobState.INSTALLATION_FAILED, error, error=error)

    async def _commit(self) -> None:
        if self.capabilities.trial_boot:
            await self.driver.commit(self._install_methods(), {c.name: c.version for c in self.components})
            note = "committed"
        else:
            note = "committed: this charger has no trial boot, the image was permanent once installed"
        self._go(JobState.COMMITTED, note + await self._discard_staged())

    def _chosen_install_methods(self) -> dict[str, str]:
        """The method per component for this driver: journaled when the job began (or at a hand-over), else
        chosen now from the bundle's ways (an older journal); a component with no way in is missing."""
        return install_methods_for(self.components, self.capabilities, None) | self.record.install_methods

    def _install_methods(self) -> dict[str, str]:
        """Every component's method. One without a way in (refused before the job starts) is named by the
        bundle's first way, which a rollback of what was never installed only passes along."""
        return {c.name: c.methods[0] for c in self.components} | self._chosen_install_methods()

    def _without_install_method(self) -> list[str]:
        chosen = self._chosen_install_methods()
        return [c.name for c in self.components if c.name not in chosen]

    async def _roll_back(self) -> None:
        # Only the components this job reached: one it never installed has nothing of this job's to undo.
        methods = self._install_methods()
        reached = {c.name: methods[c.name] for c in self.components[: self.record.component_index + 1]}
        done = await self.driver.rollback(reached, self.record.from_versions)
        identity = await self.driver.identify()
        wrong = {
            name: identity.components[name].version
            for name, version in self.record.from_versions.items()
            if name in identity.components and identity.components[name].version != version
        }
        if wrong:
            raise RollbackUnconfirmedError(
                f"after rollback the charger runs {wrong}, expected {self.record.from_versions}"
            )
        note = f"previous versions running: {self.record.from_versions}" + (f" ({done})" if done else "")
        self._go(JobState.ROLLED_BACK, note + await self._discard_staged())

    async def _discard_staged(self) -> str:
        """Free the charger's staging space before the job ends; a note when that failed.

        Housekeeping only: the outcome stands either way, and a staged copy
        left behind is reused or overwritten by the next transfer.
        """
        try:
            await self.driver.discard([c.sha256 for c in self.components])
        except (TransportError, DeviceRefusedError) as exc:
            return f"; staged images left on the charger: {exc.message}"
        return ""
