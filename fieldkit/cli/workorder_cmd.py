"""`fieldkit workorder ...`: signed work orders, issued by the back office, enforced on the laptop."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from fieldkit.cli.audit_cmd import record_event
from fieldkit.cli.common import (
    EXISTING_FILE,
    OUTPUT_FILE,
    console_out,
    parse_utc_time,
    passphrase_for,
    print_json,
    resolve_trust_store,
    settings,
    trust_store_option,
    trusted_state,
)
from fieldkit.errors import UsageError


@click.group("workorder")
def workorder_group() -> None:
    """Create, import, list and check signed work orders."""


@workorder_group.command("create")
@click.option("--id", "order_id", required=True, help="Work order id, e.g. WO-2026-0113.")
@click.option("--charger", "serials", multiple=True, required=True, help="Charger serial (repeatable).")
@click.option("--bundle-id", required=True, help="The bundle_id the chargers are to receive.")
@click.option("--not-before", required=True, help="Start of the window (ISO 8601).")
@click.option("--not-after", required=True, help="End of the window (ISO 8601).")
@click.option("--vendor", help="Vendor, checked against the dispatch key's scope.")
@click.option("--site", help="Site name, for the technician.")
@click.option("--note", default="", help="Instructions for the technician.")
@click.option("--key", "key_path", required=True, type=EXISTING_FILE, help="A dispatch private key.")
@click.option("--passphrase-file", type=EXISTING_FILE)
@click.option("--out", required=True, type=OUTPUT_FILE)
def create(
    order_id: str,
    serials: tuple[str, ...],
    bundle_id: str,
    not_before: str,
    not_after: str,
    vendor: str | None,
    site: str | None,
    note: str,
    key_path: Path,
    passphrase_file: Path | None,
    out: Path,
) -> None:
    """Write a work order signed with a dispatch key (back-office staff)."""
    from pydantic import ValidationError

    from fieldkit.bundles import keys
    from fieldkit.bundles.workorder import WorkOrderBody, sign_work_order

    private, _ = keys.load_private_key(key_path, passphrase_for(key_path, passphrase_file))
    try:
        body = WorkOrderBody(
            type="fieldkit-work-order",
            schema_version=1,
            id=order_id,
            issued_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            vendor=vendor,
            site=site,
            charger_serials=list(serials),
            bundle_id=bundle_id,
            not_before=parse_utc_time(not_before, "--not-before"),
            not_after=parse_utc_time(not_after, "--not-after"),
            note=note,
        )
    except ValidationError as exc:
        raise UsageError(f"invalid work order: {exc.errors()[0]['msg']}") from exc
    out.write_bytes(sign_work_order(body, [private]))
    console_out().print(f"wrote work order {order_id} for {len(serials)} charger(s) to {out}")


@workorder_group.command("import")
@click.argument("file", type=EXISTING_FILE)
@trust_store_option
def import_(file: Path, trust_store: Path | None) -> None:
    """Install a work order brought on a stick, after checking its signatures."""
    from fieldkit.bundles import trustops
    from fieldkit.bundles.workorder import save_work_order, verify_work_order

    state = trusted_state()
    store = trustops.open_store(resolve_trust_store(trust_store), settings().limits, state)
    data = file.read_bytes()
    body = verify_work_order(data, store.body, state.read().now)
    save_work_order(data, body)
    record_event("workorder.import", note=f"work order {body.id} for bundle {body.bundle_id}")
    console_out().print(f"installed work order {body.id}")


@workorder_group.command("list")
@trust_store_option
@click.option("--json", "as_json", is_flag=True)
def list_(trust_store: Path | None, as_json: bool) -> None:
    """List installed work orders that verify against the trust store."""
    from fieldkit.bundles import trustops
    from fieldkit.bundles.workorder import load_work_orders

    state = trusted_state()
    store = trustops.open_store(resolve_trust_store(trust_store), settings().limits, state)
    orders = load_work_orders(store.body, state.read().now)
    if as_json:
        print_json([o.model_dump(mode="json") for o in orders])
        return
    out = console_out()
    if not orders:
        out.print("no work orders installed")
    for order in orders:
        out.print(
            f"{order.id}: bundle {order.bundle_id} for {len(order.charger_serials)} charger(s), "
            f"{order.not_before:%Y-%m-%d %H:%M} to {order.not_after:%Y-%m-%d %H:%M} UTC"
            + (f", site {order.site}" if order.site else "")
        )


@workorder_group.command("check")
@trust_store_option
@click.option("--charger", "serial", required=True, help="The charger's serial number.")
@click.option("--bundle-id", required=True)
@click.option("--override-reason", help="Proceed despite the work orders; the typed reason is audited.")
def check(trust_store: Path | None, serial: str, bundle_id: str, override_reason: str | None) -> None:
    """May this bundle go to this charger now? Exit 0 if yes, 8 if a work order forbids it."""
    from fieldkit.audit.entry import BundleRef
    from fieldkit.bundles import trustops
    from fieldkit.bundles.workorder import WorkOrderError, authorize, load_work_orders

    state = trusted_state()
    cfg = settings()
    store = trustops.open_store(resolve_trust_store(trust_store), cfg.limits, state)
    now = state.read().now
    decision = authorize(
        load_work_orders(store.body, now), serial, bundle_id, now, cfg.require_work_order, override_reason
    )
    if not decision.allowed:
        raise WorkOrderError(
            f"refused by work orders: {decision.reason}",
            'get a matching work order, or override with --override-reason "why"',
        )
    if decision.overridden:
        record_event(
            "workorder.override", bundle=BundleRef(bundle_id=bundle_id), note=override_reason, error=decision.reason
        )
    console_out().print(f"allowed: {decision.reason}")
