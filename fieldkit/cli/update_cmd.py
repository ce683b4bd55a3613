"""`fieldkit update` and `fieldkit rollback`: the technician's main job, from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from fieldkit.cli.common import (
    EXISTING_FILE,
    console_out,
    resolve_trust_store,
    settings,
    trust_store_option,
    trusted_state,
)
from fieldkit.errors import FieldkitError, UsageError


class PreflightRefusedError(FieldkitError):
    exit_code = 13


class RolledBackError(FieldkitError):
    exit_code = 14
    default_hint = "the charger runs its previous version; see `fieldkit audit list` for what happened"


def _driver(address: str, ssh_key: Path | None, accept_new: bool) -> Any:
    from fieldkit.updates.connect import driver_for

    def confirm(host: str, fingerprint: str) -> bool:
        if not sys.stdin.isatty():
            return False
        return click.confirm(f"{host} is new; its host key is {fingerprint}. Trust it?", default=False)

    return driver_for(address, settings(), ssh_key, accept_new, confirm)


def _audit_hook() -> tuple[Any, Any]:
    """(hook, recorder) writing one entry per transition, or (None, None) without an identity."""
    from fieldkit.audit.entry import BundleRef
    from fieldkit.audit.identity import identity_dir
    from fieldkit.audit.recorder import AuditRecorder
    from fieldkit.cli.audit_cmd import identity_passphrase

    if not (identity_dir() / "profile.json").exists():
        return None, None
    recorder = AuditRecorder(identity_passphrase(None), trusted_state())  # asked once, before any progress bar

    def hook(record: Any, status: str, note: str) -> None:
        component = record.components[min(record.component_index, len(record.components) - 1)]
        recorder.record(
            "update.transition",
            charger=_charger_ref(record),
            bundle=BundleRef(bundle_id=record.bundle_id, version=record.to_versions.get(component)),
            from_version=record.from_versions.get(component),
            to_version=record.to_versions.get(component),
            status=status,
            note=f"{component}: {note}"[:4000] if note else component,
            error=record.error if status in ("InstallationFailed", "InstallVerificationFailed") else None,
        )

    return hook, recorder


async def _run(job: Any, as_json: bool) -> Any:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if as_json:
        async for event in job.run():
            click.echo(
                json.dumps(
                    {
                        "job": event.job_id,
                        "state": event.state.value,
                        "component": event.component,
                        "bytes_done": event.bytes_done,
                        "bytes_total": event.bytes_total,
                        "rate_bytes_per_s": round(event.rate_bytes_per_s),
                        "eta_s": event.eta_s,
                        "message": event.message,
                    }
                )
            )
        return job.record
    columns = (
        TextColumn("{task.description:<34}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console_out(), transient=False) as progress:
        task = progress.add_task("starting", total=job.record.bytes_total or None)
        async for event in job.run():
            progress.update(
                task,
                total=event.bytes_total or None,
                completed=event.bytes_done,
                description=f"{event.state.value} {event.component or ''}".strip(),
            )
    return job.record


def _finish(record: Any) -> None:
    if record.state == "Committed":
        console_out().print(
            f"[green]Committed[/]: {record.charger_serial} now runs "
            + ", ".join(f"{n} {v}" for n, v in record.to_versions.items())
        )
        return
    if record.state == "RolledBack":
        raise RolledBackError(f"update of {record.charger_serial} rolled back: {record.error or 'see the audit trail'}")
    raise FieldkitError(
        f"job {record.job_id} stopped in state {record.state}", "continue it with `fieldkit update --resume`"
    )


def _execute(job: Any, recorder: Any, as_json: bool) -> None:
    from fieldkit.errors import TransportError

    try:
        record = asyncio.run(_run(job, as_json))
    except TransportError as exc:
        raise type(exc)(
            f"interrupted in {job.record.state}: {exc.message}",
            "nothing is lost: fix the link and run `fieldkit update --resume`",
        ) from exc
    finally:
        if recorder is not None:
            recorder.close()
        job.driver.close()
    _finish(record)


def _charger_ref(record: Any) -> Any:
    from fieldkit.audit.entry import ChargerRef

    return ChargerRef(
        vendor=record.charger_vendor,
        model=record.charger_model,
        hardware_revision=record.charger_hardware_revision,
        serial=record.charger_serial,
        address=record.charger_address,
    )


def _charger_ref_of(identity: Any, address: str) -> Any:
    """How the audit trail names a charger, from what the charger reported about itself."""
    from fieldkit.audit.entry import ChargerRef

    return ChargerRef(
        vendor=identity.vendor,
        model=identity.model,
        hardware_revision=identity.hardware_revision,
        serial=identity.serial,
        address=address,
    )


@click.command("update")
@click.option("--charger", "address", help="ssh://USER@HOST[:PORT] of the charger.")
@click.option("--bundle", type=EXISTING_FILE, help="The .fwbundle to install.")
@trust_store_option
@click.option("--ssh-key", type=EXISTING_FILE, help="Private key for the charger [default: the SSH agent].")
@click.option("--accept-new-host-key", is_flag=True, help="Pin the charger's host key on first contact.")
@click.option("--confirm-serial", help="The charger serial, typed to confirm a metrology-relevant update.")
@click.option("--override-reason", help="Proceed despite work orders; the reason is audited.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print preflight and progress as JSON lines.")
@click.option("--resume", is_flag=True, help="Continue interrupted jobs from their journal.")
@click.option("--job", "job_id", help="With --resume: only this job.")
def update(
    address: str | None,
    bundle: Path | None,
    trust_store: Path | None,
    ssh_key: Path | None,
    accept_new_host_key: bool,
    confirm_serial: str | None,
    override_reason: str | None,
    yes: bool,
    as_json: bool,
    resume: bool,
    job_id: str | None,
) -> None:
    """Update a charger from a bundle: preflight, transfer, verify, install, reboot, health, commit.

    Exit 0 only when the update is Committed; 14 when it was rolled back; 13
    when preflight refused it. Every step is journaled: after any
    interruption, `fieldkit update --resume` continues where it stopped.
    """
    if resume:
        _resume(job_id, trust_store, as_json)
        return
    if not address or bundle is None:
        raise UsageError("--charger and --bundle are required", "or pass --resume to continue interrupted jobs")
    from fieldkit.audit.entry import BundleRef
    from fieldkit.bundles import trustops
    from fieldkit.bundles.workorder import load_work_orders
    from fieldkit.cli.audit_cmd import record_event
    from fieldkit.updates.engine import UpdateJob
    from fieldkit.updates.journal import Journal
    from fieldkit.updates.preflight import preflight

    cfg, state = settings(), trusted_state()
    store = trustops.open_store(resolve_trust_store(trust_store), cfg.limits, state)
    driver = _driver(address, ssh_key, accept_new_host_key)
    try:
        identity = asyncio.run(driver.identify())
        result = preflight(
            bundle,
            identity,
            store.body,
            state,
            cfg,
            load_work_orders(store.body, state.read().now),
            confirm_serial,
            override_reason,
            supported_install_methods=driver.supported_install_methods,
        )
        out = console_out()
        for check in result.checks:
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "preflight": check.name,
                            "passed": check.passed,
                            "severity": check.severity,
                            "reason": check.reason,
                        }
                    )
                )
            else:
                mark = (
                    "[green]ok[/]"
                    if check.passed
                    else ("[yellow]warn[/]" if check.severity == "warn" else "[red]NO[/]")
                )
                out.print(f"  {mark} {check.name}: {check.reason}")
        manifest = result.report.manifest
        charger = _charger_ref_of(identity, address)
        if not result.ok or manifest is None:
            reasons = "; ".join(f"{c.name}: {c.reason}" for c in result.refused)
            record_event(
                "update.refused",
                charger=charger,
                status="Refused",
                error=reasons[:2000],
                bundle=BundleRef(bundle_id=manifest.bundle_id if manifest else bundle.name[:128]),
            )
            raise PreflightRefusedError(f"preflight refused the update: {reasons}", "fix what it names, then retry")
        if override_reason:
            record_event(
                "workorder.override",
                charger=charger,
                bundle=BundleRef(bundle_id=manifest.bundle_id),
                note=override_reason,
            )
        components = manifest.components_in_order()
        from_versions = {c.name: identity.components[c.name].version for c in components}
        to_versions = {c.name: c.version for c in components}
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError("the update needs confirmation and there is no terminal", "pass --yes")
            summary = ", ".join(f"{n} {from_versions[n]} -> {v}" for n, v in to_versions.items())
            if not click.confirm(f"Update {identity.serial}: {summary}?", default=False):
                raise click.Abort
        hook, recorder = _audit_hook()
        journal = Journal()
        record = journal.create(
            charger_address=address,
            charger_serial=identity.serial,
            charger_vendor=identity.vendor,
            charger_model=identity.model,
            charger_hardware_revision=identity.hardware_revision,
            bundle_path=str(bundle.resolve()),
            bundle_id=manifest.bundle_id,
            components=list(to_versions),
            from_versions=from_versions,
            to_versions=to_versions,
            ssh_key=str(ssh_key.resolve()) if ssh_key else None,
            baseline_meter_wh=identity.meter_wh,
        )
    except BaseException:
        driver.close()
        raise
    _execute(UpdateJob(record, manifest, driver, journal, hook, cfg.limits), recorder, as_json)


def _resume(job_id: str | None, trust_store: Path | None, as_json: bool) -> None:
    from fieldkit.bundles import trustops
    from fieldkit.bundles.verify import verify_bundle
    from fieldkit.updates.engine import UpdateJob
    from fieldkit.updates.journal import Journal

    journal = Journal()
    records = [journal.load(job_id)] if job_id else journal.unfinished()
    records = [r for r in records if not r.finished]
    if not records:
        console_out().print("no interrupted update jobs")
        return
    cfg, state = settings(), trusted_state()
    store = trustops.open_store(resolve_trust_store(trust_store), cfg.limits, state)
    for record in records:
        # The bundle may have changed since the job began: authenticate it again before sending more of it.
        report = verify_bundle(Path(record.bundle_path), store.body, state, cfg)
        report.raise_if_invalid()
        manifest = report.manifest
        assert manifest is not None
        if manifest.bundle_id != record.bundle_id:
            raise UsageError(
                f"{record.bundle_path} is no longer bundle {record.bundle_id}",
                "put the original bundle back to resume this job",
            )
        if not as_json:
            console_out().print(f"resuming job {record.job_id} ({record.charger_serial}) from {record.state}")
        hook, recorder = _audit_hook()
        if hook is not None:
            hook(record, "Resumed", f"resumed from {record.state}")
        driver = _driver(record.charger_address, Path(record.ssh_key) if record.ssh_key else None, False)
        _execute(UpdateJob(record, manifest, driver, journal, hook, cfg.limits), recorder, as_json)


@click.command("rollback")
@click.option("--charger", "address", required=True, help="ssh://USER@HOST[:PORT] of the charger.")
@click.option("--ssh-key", type=EXISTING_FILE)
@click.option("--accept-new-host-key", is_flag=True)
def rollback(address: str, ssh_key: Path | None, accept_new_host_key: bool) -> None:
    """Abandon a pending image and reboot into the last committed one."""
    from fieldkit.cli.audit_cmd import record_event

    driver = _driver(address, ssh_key, accept_new_host_key)

    async def roll_back() -> Any:
        before = await driver.identify()
        unknown = [name for name, c in before.components.items() if c.install_method is None]
        if unknown:
            raise UsageError(
                f"{before.serial} does not say which updater owns {', '.join(unknown)}",
                "roll back with the charger's own updater, or resume the job that installed it "
                "(`fieldkit update --resume`)",
            )
        await driver.rollback({name: c.install_method for name, c in before.components.items()})
        return before, await driver.identify()

    try:
        before, after = asyncio.run(roll_back())
    finally:
        driver.close()
    versions = ", ".join(f"{n} {c.version}" for n, c in after.components.items())
    record_event(
        "rollback",
        status="RolledBack",
        note=f"now running {versions}",
        charger=_charger_ref_of(after, address),
        from_version=next(iter(before.components.values())).version,
        to_version=next(iter(after.components.values())).version,
    )
    console_out().print(f"rolled back {after.serial}: now running {versions}")
