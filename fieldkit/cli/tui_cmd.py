"""`fieldkit tui` (also `fieldkit` with no arguments): the technician's terminal UI."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fieldkit.cli.common import EXISTING_FILE, resolve_trust_store, settings, trust_store_option

if TYPE_CHECKING:  # Textual is imported only when the TUI runs
    from fieldkit.tui.app import FieldkitApp


@click.command("tui")
@click.option(
    "--charger",
    "chargers",
    multiple=True,
    help=(
        "Charger to show: ssh://USER@HOST[:PORT], smp+serial:///PORT?baud=N, sim:///STATE_DIR, HOST[:PORT] "
        "or a CIDR range to scan (repeatable)."
    ),
)
@click.option("--mdns", is_flag=True, help="Also look for chargers announced over mDNS.")
@click.option("--user", default="root", show_default=True, help="SSH user for scanned hosts.")
@click.option("--ssh-key", type=EXISTING_FILE, help="Private key for the chargers [default: the SSH agent].")
@click.option("--accept-new-host-key", is_flag=True, help="Pin host keys of chargers seen for the first time.")
@click.option(
    "--bundles",
    "bundles_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Bundle library [default: ./offline_bundles, else the one in fieldkit's data directory].",
)
@trust_store_option
def tui(
    chargers: tuple[str, ...],
    mdns: bool,
    user: str,
    ssh_key: Path | None,
    accept_new_host_key: bool,
    bundles_dir: Path | None,
    trust_store: Path | None,
) -> None:
    """Open the terminal UI: chargers, bundles, update, recovery, audit, settings.

    Keyboard first (1-6 switch screens, ? shows every key, Ctrl+P finds any
    action), usable at 80x24. Everything it does is journaled and audited as
    the CLI does.
    """
    from fieldkit.tui.app import FieldkitApp
    from fieldkit.tui.services import AuditService, TuiContext
    from fieldkit.updates.service import UpdateService, default_bundles_dir

    bench = UpdateService(
        settings(), resolve_trust_store(trust_store), bundles_dir or default_bundles_dir(), ssh_key, accept_new_host_key
    )
    context = TuiContext(bench, AuditService(bench), list(chargers), user, mdns)
    run_app(FieldkitApp(context))


def run_app(app: FieldkitApp, before_exit: Callable[[], None] | None = None) -> None:
    """Run the TUI. Quit while updates ran: say so and end at once, without waiting out their transfers
    (each job is journaled at every step, so this is no worse than a flat battery, and the next start
    offers to resume it)."""
    import os

    from fieldkit.tui.app import JOBS_LEFT_RUNNING

    if app.run() == JOBS_LEFT_RUNNING:
        click.echo(
            "fieldkit: updates were left running; they are journaled and the next start offers to resume them "
            "(or `fieldkit update --resume`)",
            err=True,
        )
        if before_exit is not None:
            before_exit()
        sys.stderr.flush()
        os._exit(0)
