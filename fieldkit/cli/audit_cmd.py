"""`fieldkit identity ...` and `fieldkit audit ...`: who is working, and what was done."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from pathlib import Path
from typing import Any

import click

from fieldkit import csvcells
from fieldkit.cli.common import EXISTING_FILE, OUTPUT_FILE, console_out, print_json, shown, trusted_state
from fieldkit.errors import UsageError
from fieldkit.printable import printable


def identity_passphrase(passphrase_file: Path | None, confirm: bool = False) -> bytes:
    """--passphrase-file, else $FIELDKIT_PASSPHRASE_FILE, else a prompt on a terminal."""
    from fieldkit.audit.identity import PASSPHRASE_ENV, passphrase_from_environment
    from fieldkit.bundles.keys import read_passphrase_file
    from fieldkit.errors import KeyFileError

    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    from_env = passphrase_from_environment()
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise KeyFileError(
            "the laptop identity passphrase is needed and there is no terminal to ask",
            f"pass --passphrase-file or set {PASSPHRASE_ENV}",
        )
    return click.prompt("Identity passphrase", hide_input=True, confirmation_prompt=confirm).encode("utf-8")


def record_event(action: str, **fields: Any) -> None:
    """Write an audit entry for a CLI action if this laptop has an identity.

    Without an identity there is no key to sign with, and nothing is recorded.
    With one that cannot be unlocked here, a warning says the entry is missing.
    """
    from fieldkit.audit.identity import identity_dir
    from fieldkit.audit.recorder import AuditRecorder
    from fieldkit.errors import FieldkitError

    if not (identity_dir() / "profile.json").exists():
        return
    try:
        with AuditRecorder(lambda: identity_passphrase(None), trusted_state()) as recorder:
            recorder.record(action, **fields)
    except FieldkitError as exc:
        click.echo(f"fieldkit: warning: audit entry for {action} not recorded: {exc.one_line()}", err=True)


@click.group("identity")
def identity_group() -> None:
    """The laptop key that signs audit entries, and the technician using it."""


@identity_group.command("init")
@click.option("--technician-id", required=True, help="The technician's id, as the back office knows it.")
@click.option("--name", required=True, help="The technician's name.")
@click.option("--site", help="Default site for audit entries.")
@click.option("--passphrase-file", type=EXISTING_FILE, help="Passphrase protecting the laptop key (first line).")
def identity_init(technician_id: str, name: str, site: str | None, passphrase_file: Path | None) -> None:
    """Create the laptop key (once) and set the technician profile."""
    from fieldkit.audit.identity import identity_dir, init_identity

    existed = (identity_dir() / "laptop.key").exists()
    passphrase = b"" if existed else identity_passphrase(passphrase_file, confirm=True)
    profile = init_identity(technician_id, name, site, passphrase)
    verb = "updated profile of" if existed else "created"
    console_out().print(f"{verb} laptop identity {profile.laptop_id}; technician {name} ({technician_id})")
    console_out().print(f"public key for enrollment: {identity_dir() / 'laptop.pub'}")


@identity_group.command("show")
@click.option("--json", "as_json", is_flag=True)
def identity_show(as_json: bool) -> None:
    """Show the laptop id, technician and public key."""
    from fieldkit.audit.identity import identity_dir, load_profile

    profile = load_profile()
    document = {
        "laptop_id": profile.laptop_id,
        "technician": profile.technician.model_dump(),
        "site": profile.site,
        "public_key_file": str(identity_dir() / "laptop.pub"),
        "created_at": profile.created_at,
    }
    if as_json:
        print_json(document)
        return
    out = console_out()
    out.print(
        f"laptop {profile.laptop_id}, technician {profile.technician.name} ({profile.technician.id})"
        + (f", site {profile.site}" if profile.site else "")
    )
    out.print(f"public key: {document['public_key_file']}")


@click.group("audit")
def audit_group() -> None:
    """List, verify, export and sync the audit trail."""


def _open_read_only() -> Any:
    from fieldkit.audit.store import AuditStore

    return AuditStore.open(writable=False)


def _matches(entry: dict[str, Any], action: str | None, charger: str | None, since: dt.datetime | None) -> bool:
    if action and not str(entry.get("action", "")).startswith(action):
        return False
    if charger and (entry.get("charger") or {}).get("serial") != charger:
        return False
    if since:
        try:
            wall = dt.datetime.fromisoformat(_wall(entry))
        except ValueError:  # an altered entry: `audit verify` names it; a time filter cannot place it
            return False
        if wall.tzinfo is None or wall < since:
            return False
    return True


def _wall(entry: dict[str, Any]) -> str:
    time = entry.get("time")
    return str(time.get("wall_utc", "")) if isinstance(time, dict) else ""


def _warn_damaged(store: Any) -> None:
    for message in store.damaged:
        click.echo(f"warning: {printable(message)} (not shown; `fieldkit audit verify` says more)", err=True)


def _filtered(action: str | None, charger: str | None, since: str | None) -> list[dict[str, Any]]:
    since_time = None
    if since:
        try:
            since_time = dt.datetime.fromisoformat(since)
        except ValueError as exc:
            raise UsageError(f"--since {since!r} is not a date", "use ISO 8601, e.g. 2026-11-01") from exc
        since_time = since_time if since_time.tzinfo else since_time.replace(tzinfo=dt.UTC)
    with _open_read_only() as store:
        entries = [e for e in store.entries() if _matches(e, action, charger, since_time)]
        _warn_damaged(store)
        return entries


def _filter_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--action", help="Only entries whose action starts with this."),
            click.option("--charger", help="Only entries for this charger serial."),
            click.option("--since", help="Only entries at or after this time (ISO 8601)."),
        ]
    ):
        function = option(function)
    return function


@audit_group.command("list")
@_filter_options
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="Newest N entries.")
@click.option("--json", "as_json", is_flag=True)
def audit_list(action: str | None, charger: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """List audit entries, newest last."""
    from rich.table import Table

    entries = _filtered(action, charger, since)[-limit:]
    if as_json:
        print_json(entries)
        return
    table = Table("seq", "time (UTC)", "action", "charger", "status", "versions", "note")
    for e in entries:
        versions = f"{e.get('from_version') or ''} → {e.get('to_version') or ''}" if e.get("to_version") else ""
        table.add_row(
            str(e["seq"]),
            shown(_wall(e)[:19].replace("T", " ")),
            shown(e.get("action", "")),
            shown((e.get("charger") or {}).get("serial", "")),
            shown(e.get("status") or ""),
            shown(versions),
            shown((e.get("error") or e.get("note") or "")[:40]),
        )
    console_out().print(table)


@audit_group.command("show")
@click.argument("entry")
def audit_show(entry: str) -> None:
    """Show one entry, by sequence number or id (prefix)."""
    with _open_read_only() as store:
        found = store.find(entry)
    if found is None:
        raise UsageError(f"no audit entry {entry!r}", "see `fieldkit audit list` for sequence numbers and ids")
    print_json(found)


@audit_group.command("verify")
def audit_verify() -> None:
    """Check the whole chain and every signature; name the first broken entry."""
    from fieldkit.audit.identity import load_profile
    from fieldkit.errors import FieldkitError

    profile = load_profile()
    with _open_read_only() as store:
        report = store.verify(profile.public_key(), profile.laptop_id)
    if not report.ok:
        raise FieldkitError(
            f"audit chain broken at entry {report.broken_seq}: {report.reason} "
            f"({report.count} entries before it are intact)",
            "the store was altered or damaged; keep a copy and report it to the back office",
        )
    for warning in report.warnings:
        click.echo(f"warning: {printable(warning)}", err=True)
    console_out().print(f"audit chain intact: {report.count} entries, every signature valid")


@audit_group.command("export")
@_filter_options
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--out", type=OUTPUT_FILE, help="File to write [default: stdout].")
def audit_export(action: str | None, charger: str | None, since: str | None, fmt: str, out: Path | None) -> None:
    """Export entries as JSON (complete, signed) or CSV (flat, for spreadsheets)."""
    entries = _filtered(action, charger, since)
    if fmt == "json":
        text = json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "seq",
                "id",
                "time_utc",
                "clock_trust",
                "technician",
                "site",
                "action",
                "vendor",
                "model",
                "hardware_revision",
                "serial",
                "bundle_id",
                "from_version",
                "to_version",
                "status",
                "error",
                "note",
            ]
        )
        for e in entries:
            charger_ref, bundle = e.get("charger") or {}, e.get("bundle") or {}
            writer.writerow(
                csvcells.row(
                    [
                        e["seq"],
                        e["id"],
                        e["time"]["wall_utc"],
                        e["time"]["clock_trust"],
                        e["technician"]["id"],
                        e.get("site") or "",
                        e["action"],
                        charger_ref.get("vendor", ""),
                        charger_ref.get("model", ""),
                        charger_ref.get("hardware_revision", ""),
                        charger_ref.get("serial", ""),
                        bundle.get("bundle_id", ""),
                        e.get("from_version") or "",
                        e.get("to_version") or "",
                        e.get("status") or "",
                        e.get("error") or "",
                        e.get("note") or "",
                    ]
                )
            )
        text = buffer.getvalue()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console_out().print(f"wrote {len(entries)} entries to {out}")


def default_credential_path() -> Path:
    from fieldkit.audit.identity import identity_dir

    return identity_dir() / "backoffice-credential.json"


@audit_group.command("status")
@click.option("--json", "as_json", is_flag=True)
def audit_status(as_json: bool) -> None:
    """Entries held, pending delivery, last sync and its result."""
    with _open_read_only() as store:
        state = store.sync_state()
        document = {
            "entries": store.head_seq,
            "pending": store.pending_count,
            "acked_seq": state["acked_seq"],
            "last_success_at": state.get("last_success_at"),
            "last_attempt_at": state.get("last_attempt_at"),
            "last_error": state.get("last_error"),
        }
    if as_json:
        print_json(document)
        return
    line = f"{document['entries']} entries, {document['pending']} pending delivery"
    line += f"; last sync {document['last_success_at'] or 'never'}"
    if document["last_error"]:
        line += f"; last attempt failed: {document['last_error']}"
    console_out().print(line)


@audit_group.command("sync")
@click.option("--once", is_flag=True, help="One attempt; do not retry.")
@click.option(
    "--credential",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credential file from enrollment [default: identity/backoffice-credential.json].",
)
@click.option("--backoffice", "backoffice_url", help="Override the URL in the credential file.")
@click.option(
    "--max-attempts",
    default=6,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Attempts, with exponential backoff and jitter, before giving up.",
)
def audit_sync(once: bool, credential: Path | None, backoffice_url: str | None, max_attempts: int) -> None:
    """Deliver pending entries to the back office (exactly once), then pull a newer trust store."""
    import dataclasses

    from fieldkit.audit.store import AuditStore
    from fieldkit.audit.sync import BackofficeClient, Credential, sync_with_retries
    from fieldkit.cli.common import resolve_trust_store, settings
    from fieldkit.updates.backoffice_pull import pull_from_backoffice

    cred = Credential.load(credential or default_credential_path())
    if backoffice_url:
        cred = dataclasses.replace(cred, backoffice_url=backoffice_url)
    with BackofficeClient(cred) as client:
        with AuditStore.open() as store:
            result = sync_with_retries(store, client, 1 if once else max_attempts)
        # After the store is closed: installing a trust store writes an audit entry of its own
        # (delivered by the next sync).
        pulled = pull_from_backoffice(
            client, resolve_trust_store(None), trusted_state(), settings().limits, record_event
        )
    for warning in pulled.warnings:
        click.echo(f"fieldkit: warning: {printable(warning)}", err=True)
    console_out().print(
        f"synced: {result.stored} new entries stored, back office holds {result.high_water_mark}; "
        f"{result.pending} pending{shown(pulled.summary)}"
    )
