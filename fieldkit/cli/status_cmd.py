"""`fieldkit status` (one charger: identity, components, slots, what is pending, which bundles apply) and
`fieldkit history` (one row per update, from the audit trail)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fieldkit.cli.common import EXISTING_FILE, console_out, print_json, shown, trust_store_option

if TYPE_CHECKING:
    from fieldkit.domain import ChargerIdentity
    from fieldkit.updates.service import BundleSummary


def _facts(identity: ChargerIdentity) -> dict[str, Any]:
    return {
        "vendor": identity.vendor,
        "model": identity.model,
        "hardware_revision": identity.hardware_revision or None,
        "serial": identity.serial,
        "address": identity.address,
        "profile": identity.profile,
        "vehicle_charging": identity.transaction_active,  # null: the charger cannot tell
        "security_version_floor": identity.security_version_floor,
        "connectors": list(identity.connector_statuses),
        "unknown": identity.unknown_safety_facts,
        "components": [
            {
                "name": c.name,
                "version": c.version,
                "active_slot": c.active_slot,
                "state": c.state,
                "pending_slot": c.pending_slot,
                "pending_version": c.pending_version,
                "updater": c.install_method,
            }
            for c in identity.components.values()
        ],
    }


def _verdict(summary: BundleSummary, identity: ChargerIdentity) -> dict[str, Any]:
    from fieldkit.updates.preflight import version_change

    manifest = summary.manifest
    changes = []
    if manifest is not None:
        for component in manifest.components_in_order():
            current = identity.components.get(component.name)
            installed = current.version if current is not None else None
            changes.append({"component": component.name, "from": installed, "to": component.version,
                            "change": version_change(installed, component.version)})  # fmt: skip
    newer = bool(changes) and all(c["change"] == "newer" for c in changes)
    return {
        "bundle": summary.path.name,
        "applies": summary.valid and newer,
        "verdict": summary.code if not summary.valid else "newer" if newer else "no newer version",
        "reason": summary.reason,
        "changes": changes,
    }


@click.command("status")
@click.option("--charger", "address", required=True, help="The charger's address (as for `fieldkit update`).")
@trust_store_option
@click.option("--ssh-key", type=EXISTING_FILE, help="Private key for the charger [default: the SSH agent].")
@click.option("--accept-new-host-key", is_flag=True, help="Pin the charger's host key on first contact.")
@click.option("--json", "as_json", is_flag=True)
def status(
    address: str, trust_store: Path | None, ssh_key: Path | None, accept_new_host_key: bool, as_json: bool
) -> None:
    """One charger as it reports itself: identity, each component's version and slots, what is pending
    (installed, not yet committed), whether a vehicle is charging, and which bundles of the library apply.

    Read only: nothing is sent to the charger but questions. What the charger
    cannot tell is shown as unknown, never as fine.
    """
    from fieldkit.cli.update_cmd import _service

    service = _service(trust_store, ssh_key, accept_new_host_key)
    identity = asyncio.run(service.identify(address))
    verdicts = [_verdict(service.check_bundle(path, identity), identity) for path in service.bundle_paths()]
    facts = _facts(identity)
    if as_json:
        print_json({**facts, "bundles": verdicts})
        return
    out = console_out()
    out.print(
        f"[b]{shown(identity.vendor)} {shown(identity.model)}[/b] rev {shown(identity.hardware_revision or 'unknown')}"
        f" · serial {shown(identity.serial)} · {shown(address)}"
    )
    charging = {None: "[yellow]unknown[/]", True: "[red]yes[/]", False: "no"}[identity.transaction_active]
    floor = identity.security_version_floor
    out.print(
        f"vehicle charging: {charging} · anti-rollback floor: {floor if floor is not None else '[yellow]unknown[/]'}"
        + (f" · connectors: {shown(', '.join(identity.connector_statuses))}" if identity.connector_statuses else "")
    )
    for c in identity.components.values():
        pending = (
            f" · [yellow]pending[/] {shown(c.pending_version or '?')} in slot {shown(c.pending_slot)}"
            if c.pending_slot
            else ""
        )
        out.print(
            f"  {shown(c.name)} {shown(c.version or 'unknown')} · slot {shown(c.active_slot)} ({shown(c.state)})"
            f"{pending}{f' · {shown(c.install_method)}' if c.install_method else ''}"
        )
    if not verdicts:
        out.print(f"no bundles in {shown(service.bundles_dir)}")
    for v in verdicts:
        mark = "[green]applies[/]" if v["applies"] else "[dim]does not apply[/]"
        out.print(f"  {mark} {shown(v['bundle'])}: {shown(v['verdict'])}" + (
            f" — {shown(v['reason'])}" if not v["applies"] and v["reason"] else ""))  # fmt: skip


@click.command("history")
@click.option("--charger", "serial", help="Only this charger (its serial number).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="The newest N updates.")
@click.option("--json", "as_json", is_flag=True)
def history(serial: str | None, limit: int, as_json: bool) -> None:
    """One row per update (not one per transition): charger, bundle, versions, when, and how it ended."""
    from rich.table import Table

    from fieldkit.audit.store import AuditStore
    from fieldkit.updates.history import update_history

    with AuditStore.open(writable=False) as store:
        rows = update_history(store.entries(), serial)[-limit:]
    if as_json:
        print_json([row.as_json() for row in rows])
        return
    table = Table("started (UTC)", "charger", "bundle", "versions", "outcome", "detail")
    for row in rows:
        table.add_row(
            shown(row.started_at[:16].replace("T", " ")),
            shown(row.serial),
            shown(row.bundle_id),
            shown(f"{row.from_version or '?'} → {row.to_version or '?'}"),
            shown(row.outcome),
            shown(row.detail[:60]),
        )
    console_out().print(table)
