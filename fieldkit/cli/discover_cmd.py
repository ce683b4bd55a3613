"""`fieldkit discover`: find the chargers reachable from this laptop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fieldkit.cli.common import EXISTING_FILE, FiniteFloatRange, console_out, settings, shown
from fieldkit.errors import UsageError

if TYPE_CHECKING:
    from fieldkit.discovery.serial import SerialFound
    from fieldkit.discovery.ssh import Discovered


@click.command("discover")
@click.option(
    "--ssh", "targets", multiple=True, help="HOST, HOST:PORT or a CIDR range such as 192.0.2.0/24 (repeatable)."
)
@click.option(
    "--serial",
    "serial_ports",
    multiple=True,
    help="A serial port to probe for an mcumgr SMP board (/dev/ttyACM0, COM3), or `all` for every local port.",
)
@click.option("--baud", default=115_200, show_default=True, type=click.IntRange(min=300), help="For --serial.")
@click.option("--mdns", is_flag=True, help="Also browse mDNS for announced SSH services (_ssh._tcp).")
@click.option(
    "--mdns-seconds", default=3.0, show_default=True, type=FiniteFloatRange(0.1, 60), help="How long to browse mDNS."
)
@click.option(
    "--mdns-interface", "mdns_interfaces", multiple=True, help="Local IPv4 address to browse on [default: all]."
)
@click.option("--port", default=22, show_default=True, type=click.IntRange(1, 65535), help="Default SSH port.")
@click.option("--user", default="root", show_default=True, help="SSH user on the chargers.")
@click.option("--ssh-key", type=EXISTING_FILE)
@click.option("--accept-new-host-key", is_flag=True, help="Pin host keys of chargers seen for the first time.")
@click.option("--json", "as_json", is_flag=True)
def discover(
    targets: tuple[str, ...],
    serial_ports: tuple[str, ...],
    baud: int,
    mdns: bool,
    mdns_seconds: float,
    mdns_interfaces: tuple[str, ...],
    port: int,
    user: str,
    ssh_key: Path | None,
    accept_new_host_key: bool,
    as_json: bool,
) -> None:
    """Probe SSH hosts and ranges and identify the chargers among them.

    An open port is a candidate; it is listed as a charger only once it
    identifies itself. Unknown host keys are shown with their fingerprint and
    pinned only with --accept-new-host-key. With --mdns, services announced
    as _ssh._tcp are probed the same way. With --serial, each port (or every
    local one) is asked over mcumgr SMP; a board that answers is listed with
    the address to update it at. (USB DFU discovery comes with its driver.)
    """
    from fieldkit.discovery.ssh import discover_chargers

    if not targets and not mdns and not serial_ports:
        raise UsageError("nothing to discover", "pass --ssh HOST, --ssh CIDR, --mdns or --serial PORT|all")
    announced: list[str] = []
    if mdns:
        from fieldkit.discovery.mdns import browse

        announced = [f"{c.host}:{c.port}" for c in browse(mdns_seconds, mdns_interfaces or None)]
    wanted = list(dict.fromkeys([*targets, *announced]))
    results: list[Discovered | SerialFound] = []
    if wanted:
        results += discover_chargers(wanted, settings(), user, port, ssh_key, accept_new_host_key)
    if serial_ports:
        import asyncio

        from fieldkit.discovery.serial import discover_serial

        ports = [] if "all" in serial_ports else list(dict.fromkeys(serial_ports))
        results += asyncio.run(discover_serial(ports, baud))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "address": r.address,
                        "outcome": r.outcome,
                        "detail": r.detail,
                        "identity": None
                        if r.identity is None
                        else {
                            "vendor": r.identity.vendor,
                            "model": r.identity.model,
                            "hardware_revision": r.identity.hardware_revision,
                            "serial": r.identity.serial,
                            "versions": {n: c.version for n, c in r.identity.components.items()},
                            "transaction_active": r.identity.transaction_active,
                            # Where facts came from when not reported by the charger itself (a file, a descriptor).
                            "fact_sources": {f: s.name.lower() for f, s in r.identity.fact_sources.items()},
                        },
                    }
                    for r in results
                ],
                indent=2,
            )
        )
        return
    out = console_out()
    if not results:
        out.print("nothing found" + (" (none announced over mDNS either)" if mdns else ""))
    for r in results:
        if r.identity is not None:
            versions = shown(", ".join(f"{n} {c.version}" for n, c in r.identity.components.items()))
            charging = (
                "  [yellow]vehicle charging[/]"
                if r.identity.transaction_active
                else ("  [yellow]charging: unknown[/]" if r.identity.transaction_active is None else "")
            )
            out.print(
                f"[green]charger[/] {shown(r.address)}  {shown(r.identity.vendor)} {shown(r.identity.model)} rev "
                f"{shown(r.identity.hardware_revision)}  serial {shown(r.identity.serial)}  {versions}{charging}"
            )
        else:
            info = getattr(r, "info", None)  # a serial port's: what kind of adapter it is
            port_hint = f"  ({shown(info.hint)})" if info is not None else ""
            out.print(f"[dim]{r.outcome:<16}[/] {shown(r.address)}  {shown(r.detail)}{port_hint}")
