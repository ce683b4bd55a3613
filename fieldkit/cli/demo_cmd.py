"""`fieldkit demo ...`: reproducible demo material for the simulated chargers."""

from __future__ import annotations

from pathlib import Path

import click

from fieldkit.cli.common import console_out, settings


@click.group("demo")
def demo_group() -> None:
    """Create and check the demo's keys, trust store and bundles, and run the demo site (`make demo`)."""


@demo_group.command("init")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write keys/, trust-store.json and the *.fwbundle files.",
)
@click.option(
    "--payload-size",
    default=None,
    show_default="2 MiB",
    type=click.IntRange(min=256, max=1 << 31),
    help="Bytes per simulated firmware image.",
)
def init(directory: Path, payload_size: int | None) -> None:
    """Write demo keys, a demo trust store and demo bundles (same bytes every time).

    The keys are DEMO keys that anyone can derive: they are trusted only by
    the demo trust store written here, never by a real one.
    """
    from fieldkit.demo import DEFAULT_PAYLOAD_BYTES, init_demo

    made = init_demo(directory, payload_size or DEFAULT_PAYLOAD_BYTES)
    out = console_out()
    out.print(f"demo keys in {directory / 'keys'}, trust store {directory / 'trust-store.json'}")
    for bundle in made:
        out.print(f"  {bundle.file_name:<48} for {bundle.model:<9} expect: {bundle.expectation}")


@demo_group.command("check")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
def check(directory: Path) -> None:
    """Verify every demo bundle against the simulated charger it is for; exit 1 if any verdict is unexpected."""
    from fieldkit.bundles.clock import STATE_NAME, TrustedState
    from fieldkit.bundles.truststore import load_trust_store
    from fieldkit.bundles.verify import verify_bundle
    from fieldkit.demo import INDEX_NAME, charger_facts_for, read_index
    from fieldkit.errors import FieldkitError, UsageError

    if not (directory / INDEX_NAME).exists():
        raise UsageError(f"no demo bundles in {directory}", "run `fieldkit demo init --dir DIR` first")
    cfg = settings()
    state = TrustedState(directory / STATE_NAME)
    store = load_trust_store(directory / "trust-store.json", cfg.limits, state.read().now)
    out = console_out()
    unexpected = 0
    for bundle in read_index(directory):
        facts = charger_facts_for(bundle.model)
        report = verify_bundle(directory / bundle.file_name, store.body, state, cfg, facts)
        failure = report.failure
        code = failure.code if failure else ""
        verdict = "[green]VALID  [/]" if failure is None else "[red]REFUSED[/]"
        reason = "all checks passed" if failure is None else f"{failure.name}/{failure.code}: {failure.message}"
        surprise = "" if code == bundle.expected_code else f"  [bold red]UNEXPECTED (expected {bundle.expectation})[/]"
        unexpected += bool(surprise)
        out.print(
            f"{verdict} {bundle.file_name}  (for {facts.model} rev {facts.hardware_revision}): {reason}{surprise}"
        )
    if unexpected:
        raise FieldkitError(
            f"{unexpected} demo bundle(s) did not get the verdict they were made for",
            "re-create them with `fieldkit demo init`",
        )


@demo_group.command("run")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Demo directory (bundles, simulated chargers, back-office database).",
)
def run(directory: Path) -> None:
    """Start simulated chargers and a local back office, open the TUI on them; quitting stops them all.

    Five chargers: a VQ-AC22 and a KS-DC60 (SWUpdate) that update cleanly, a
    VQ-DC150 with a vehicle charging (refused), an NV-AC7 (Mender) whose new
    image never becomes healthy (rolled back), all over SSH; and an AMP-WB7
    wallbox MCU over mcumgr SMP on a serial pseudo-terminal, which cannot tell
    whether a vehicle is charging. This is `make demo`.

    The demo runs in its own fieldkit home, DIR/home (identity, journals,
    audit trail, known hosts, settings: put a config.toml there to tune it),
    never in the laptop's real one.
    """
    import sys

    from fieldkit.demo.site import start_site, use_demo_home
    from fieldkit.errors import UsageError

    use_demo_home(directory)  # before any setting is read: the demo never touches the real fieldkit home

    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise UsageError(
            "the demo opens a terminal UI and needs a terminal",
            f"run it in one; `fieldkit demo check --dir {directory}` checks the bundles without",
        )
    site = start_site(directory)
    try:
        from fieldkit.cli.tui_cmd import run_app
        from fieldkit.tui.app import FieldkitApp
        from fieldkit.tui.services import AuditService, TuiContext
        from fieldkit.updates.service import UpdateService

        bench = UpdateService(settings(), directory / "trust-store.json", directory, site.client_key, True)
        run_app(FieldkitApp(TuiContext(bench, AuditService(bench), list(site.addresses))), site.stop)
    finally:
        site.stop()
