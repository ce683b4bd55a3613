"""`fieldkit update` and `fieldkit rollback`: the technician's main job, from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fieldkit.cli.common import (
    EXISTING_FILE,
    console_out,
    resolve_trust_store,
    settings,
    shown,
    trust_store_option,
    trusted_state,
)
from fieldkit.errors import FieldkitError, UsageError
from fieldkit.printable import printable

if TYPE_CHECKING:  # imported where used: `fieldkit --help` loads no update machinery
    from fieldkit.audit.recorder import AuditRecorder
    from fieldkit.updates.auditing import AuditFields
    from fieldkit.updates.engine import AuditHook, UpdateJob
    from fieldkit.updates.journal import JobRecord
    from fieldkit.updates.preflight import PreflightCheck
    from fieldkit.updates.service import UpdateCheck, UpdateService


class RolledBackError(FieldkitError):
    exit_code = 14
    default_hint = "the charger runs its previous version; see `fieldkit audit list` for what happened"


def _service(trust_store: Path | None, ssh_key: Path | None = None, accept_new: bool = False) -> UpdateService:
    from fieldkit.updates.service import UpdateService, default_bundles_dir

    def confirm(host: str, fingerprint: str) -> bool:
        if not sys.stdin.isatty():
            return False
        return click.confirm(f"{host} is new; its host key is {fingerprint}. Trust it?", default=False)

    return UpdateService(
        settings(),
        resolve_trust_store(trust_store),
        default_bundles_dir(),
        ssh_key,
        accept_new,
        confirm_host_key=confirm,
        trust_store_given=trust_store is not None,
    )


def _audit_hook() -> tuple[AuditHook | None, AuditRecorder | None]:
    """(hook, recorder) writing one entry per transition, or (None, None) without an identity."""
    from fieldkit.audit.identity import identity_dir
    from fieldkit.audit.recorder import AuditRecorder
    from fieldkit.cli.audit_cmd import identity_passphrase
    from fieldkit.updates.auditing import transition_hook

    if not (identity_dir() / "profile.json").exists():
        return None, None
    recorder = AuditRecorder(identity_passphrase(None), trusted_state())  # asked once, before any progress bar
    return transition_hook(recorder), recorder


def _cancel_on_ctrl_c(job: UpdateJob) -> None:
    """The first Ctrl-C cancels the job at its next safe point (before install: stop, resumable; after: roll back).

    A second one interrupts at once, as Ctrl-C always does; the journal resumes it.
    """
    loop = asyncio.get_running_loop()

    def first() -> None:
        job.cancel()
        click.echo("fieldkit: cancelling at the next safe point (Ctrl-C again to interrupt now)", err=True)
        loop.remove_signal_handler(signal.SIGINT)

    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers off the main thread
        loop.add_signal_handler(signal.SIGINT, first)


async def _run(job: UpdateJob, as_json: bool) -> JobRecord:
    _cancel_on_ctrl_c(job)
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
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

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


def _finish(record: JobRecord, as_json: bool) -> None:
    if record.state == "Committed":
        if as_json:  # the last progress line already says Committed; scripts read JSON lines only
            return
        console_out().print(
            f"[green]Committed[/]: {shown(record.charger_serial)} now runs "
            + shown(", ".join(f"{n} {v}" for n, v in record.to_versions.items()))
        )
        return
    if record.state == "RolledBack":
        states = [step["state"] for step in record.history]
        refused = "Installing" in states and states[states.index("Installing") + 1 :][:1] == ["InstallationFailed"]
        if refused and record.component_index == 0 and "InstallRebooting" not in states:
            # The first install was refused: nothing on the charger changed, so nothing was rolled back.
            raise RolledBackError(
                f"the charger refused the update of {record.charger_serial}: {record.error or 'see the audit trail'}",
                "nothing was installed; the charger runs what it ran before",
            )
        raise RolledBackError(f"update of {record.charger_serial} rolled back: {record.error or 'see the audit trail'}")
    raise FieldkitError(
        f"job {record.job_id} stopped in state {record.state}", "continue it with `fieldkit update --resume`"
    )


def _execute(job: UpdateJob, recorder: AuditRecorder | None, as_json: bool) -> None:
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
        job.close()
    _finish(record, as_json)


def _print_checks(checks: list[PreflightCheck], as_json: bool) -> None:
    if as_json:  # JSON lines need no rich console (nor its import time)
        for check in checks:
            payload = {"preflight": check.name, "passed": check.passed, "severity": check.severity}
            click.echo(json.dumps({**payload, "reason": check.reason}))
        return
    out = console_out()
    for check in checks:
        mark = "[green]ok[/]" if check.passed else ("[yellow]warn[/]" if check.severity == "warn" else "[red]NO[/]")
        out.print(f"  {mark} {check.name}: {shown(check.reason)}")


@click.command("update")
@click.option(
    "--charger",
    "address",
    help=(
        "The charger: ssh://USER@HOST[:PORT], smp+serial:///dev/ttyACM0?baud=115200 (also smp+socket://, "
        "smp+rfc2217://), or sim:///STATE_DIR."
    ),
)
@click.option("--bundle", type=EXISTING_FILE, help="The .fwbundle to install.")
@trust_store_option
@click.option("--ssh-key", type=EXISTING_FILE, help="Private key for the charger [default: the SSH agent].")
@click.option("--accept-new-host-key", is_flag=True, help="Pin the charger's host key on first contact.")
@click.option("--confirm-serial", help="The charger serial, typed to confirm a metrology-relevant update.")
@click.option("--override-reason", help="Proceed despite work orders; the reason is audited.")
@click.option(
    "--confirm-unknown",
    "confirm_unknown",
    multiple=True,
    type=click.Choice(["transaction", "security_version_floor", "hardware_revision"]),
    help="A fact the charger cannot report, checked by you on site (repeatable); audited.",
)
@click.option("--allow-reinstall", is_flag=True, help="Install the version the charger already runs; audited.")
@click.option(
    "--allow-older", is_flag=True, help="Install an older version (never below the anti-rollback floor); audited."
)
@click.option("--dry-run", is_flag=True, help="Preflight only: nothing is sent to the charger (exit 0 or 13).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print preflight and progress as JSON lines.")
@click.option("--resume", is_flag=True, help="Continue an interrupted job from its journal (with --charger or --job).")
@click.option("--job", "job_id", help="With --resume: this job.")
def update(
    address: str | None,
    bundle: Path | None,
    trust_store: Path | None,
    ssh_key: Path | None,
    accept_new_host_key: bool,
    confirm_serial: str | None,
    override_reason: str | None,
    confirm_unknown: tuple[str, ...],
    allow_reinstall: bool,
    allow_older: bool,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    resume: bool,
    job_id: str | None,
) -> None:
    """Update a charger from a bundle: preflight, transfer, verify, install, reboot, health, commit.

    Exit 0 only when the update is Committed; 14 when it was rolled back; 13
    when preflight refused it; 10 when the link to the charger was lost; 11
    when the charger refused a command. Every step is journaled: after any
    interruption, `fieldkit update --resume` continues where it stopped.

    Ctrl-C: before anything is installed, the job stops at the next safe
    point with the charger untouched (exit 130; resume it later); once
    installing has begun, it is rolled back instead (exit 14). A second
    Ctrl-C stops at once; the journal still lets `--resume` finish the job.

    Installing the version a charger already runs, or an older one, is
    refused unless asked for with --allow-reinstall or --allow-older; the
    choice is recorded in the audit trail. --dry-run runs preflight only.
    """
    if resume:
        _resume(address, job_id, trust_store, as_json)
        return
    if not address or bundle is None:
        raise UsageError("--charger and --bundle are required", "or pass --resume to continue interrupted jobs")
    from fieldkit.cli.audit_cmd import record_event
    from fieldkit.updates.service import Confirmations, PreflightRefusedError

    service = _service(trust_store, ssh_key, accept_new_host_key)
    confirmations = Confirmations(
        confirm_serial, override_reason, frozenset(confirm_unknown), allow_reinstall, allow_older
    )
    check = asyncio.run(service.check(address, bundle, confirmations))
    _print_checks(check.preflight.checks, as_json)
    manifest = check.preflight.report.manifest
    if dry_run:  # nothing was attempted, so nothing is audited
        if not check.ok or manifest is None:
            reasons = "; ".join(f"{c.name}: {c.reason}" for c in check.preflight.refused) or "the bundle"
            raise PreflightRefusedError(f"dry run: preflight would refuse: {reasons}", check.preflight)
        if not as_json:
            console_out().print(f"dry run: preflight passes; the update would go ahead{_estimate(check)}")
        return
    if not check.ok or manifest is None:
        raise service.refused(check, bundle, record_event)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("the update needs confirmation and there is no terminal", "pass --yes")
        identity = check.identity
        summary = ", ".join(
            f"{c.name} {identity.components[c.name].version} -> {c.version}" for c in manifest.components_in_order()
        )
        if not click.confirm(f"Update {printable(identity.serial)}: {printable(summary)}?", default=False):
            raise click.Abort
    hook, recorder = _audit_hook()

    def record(action: str, **fields: AuditFields) -> None:
        # The recorder the job writes with holds the trail: events go through it too, not a second one.
        if recorder is not None:
            recorder.record(action, **fields)

    try:
        # Checked again as it starts (the charger may have changed while the technician read the checks).
        job = asyncio.run(service.start(address, bundle, confirmations, record, hook))
    except BaseException:
        if recorder is not None:
            recorder.close()
        raise
    _execute(job, recorder, as_json)


def _estimate(check: UpdateCheck) -> str:
    seconds = check.preflight.estimate_s
    return f" (about {max(1, round(seconds / 60))} min)" if seconds else ""


def _resume(address: str | None, job_id: str | None, trust_store: Path | None, as_json: bool) -> None:
    service = _service(trust_store)
    records = service.unfinished_for(address, job_id)
    if not records:
        console_out().print("no interrupted update jobs" + (f" for {shown(address)}" if address else ""))
        return
    if len(records) > 1:
        listed = "; ".join(f"{r.job_id} ({r.charger_serial} at {r.charger_address}, {r.state})" for r in records)
        raise UsageError(
            f"{len(records)} interrupted jobs: {listed}",
            "resume one charger at a time: add --charger ADDRESS or --job JOB_ID",
        )
    record = records[0]
    if not as_json:
        console_out().print(f"resuming job {record.job_id} ({shown(record.charger_serial)}) from {record.state}")
    hook, recorder = _audit_hook()
    try:
        # The bundle may have changed since the job began: it is authenticated again before more is sent.
        job = service.resume_job(record, hook)
    except BaseException:
        if recorder is not None:
            recorder.close()
        raise
    _execute(job, recorder, as_json)


@click.command("rollback")
@click.option(
    "--charger",
    "address",
    required=True,
    help="The charger: ssh://USER@HOST[:PORT], smp+serial:///PORT?baud=N, smp+socket://HOST:PORT, or sim:///STATE_DIR.",
)
@click.option("--ssh-key", type=EXISTING_FILE)
@click.option("--accept-new-host-key", is_flag=True)
def rollback(address: str, ssh_key: Path | None, accept_new_host_key: bool) -> None:
    """Abandon an installed image that has not been committed.

    An image installed but not yet booted is abandoned by making the running
    slot primary again; nothing is marked bad. With nothing pending the
    charger is left alone and the command fails (exit 11).
    """
    from fieldkit.cli.audit_cmd import record_event
    from fieldkit.updates.auditing import rollback_entry, running_versions

    before, after = asyncio.run(_service(None, ssh_key, accept_new_host_key).rollback(address))
    record_event("rollback", **rollback_entry(before, after, address))
    console_out().print(f"rolled back {shown(after.serial)}: now running {shown(running_versions(after))}")
