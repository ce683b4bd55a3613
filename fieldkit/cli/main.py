"""The `fieldkit` entry point: the command tree and the error policy.

Any FieldkitError becomes one line on stderr and its exit code; a usage
mistake becomes one line and exit 2; anything unexpected becomes one line,
exit 70, and the traceback only with --debug (or FIELDKIT_DEBUG=1).
"""

from __future__ import annotations

import os
import sys
from typing import Final

import click

from fieldkit import __version__
from fieldkit.cli.audit_cmd import audit_group, identity_group
from fieldkit.cli.backoffice_cmd import backoffice_group
from fieldkit.cli.bundle_cmd import bundle_group
from fieldkit.cli.demo_cmd import demo_group
from fieldkit.cli.discover_cmd import discover
from fieldkit.cli.keys_cmd import keys_group
from fieldkit.cli.sim_cmd import sim_group
from fieldkit.cli.status_cmd import history, status
from fieldkit.cli.trust_cmd import trust_group
from fieldkit.cli.tui_cmd import tui
from fieldkit.cli.update_cmd import rollback, update
from fieldkit.cli.workorder_cmd import workorder_group
from fieldkit.errors import FieldkitError
from fieldkit.printable import printable

EXIT_INTERNAL: Final = 70
EXIT_INTERRUPTED: Final = 130


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, invoke_without_command=True
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
    help="Show fieldkit's version and the trust store's version and fingerprint, then exit.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """fieldkit: offline firmware updates for EV chargers.

    Verify signed bundles from offline_bundles/ against the trust store, keep
    a signed audit trail and deliver it to the back office exactly once,
    enforce signed work orders, run the back office, and make bundles as a
    release engineer. With no command, opens the terminal UI (`fieldkit tui`).
    """
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(tui)
        else:  # a script or a pipe: the TUI needs a terminal, so say what there is instead
            click.echo(ctx.get_help())


def _print_version(ctx: click.Context) -> None:
    """fieldkit's version, and which trust store this laptop trusts: what a support call asks first."""
    from fieldkit.config import default_trust_store_path, load_settings

    click.echo(f"fieldkit {__version__}")
    path = default_trust_store_path()
    if not path.exists():
        click.echo(f"trust store: none at {printable(path)} (install one with `fieldkit trust update`)")
        ctx.exit(0)
    from fieldkit.bundles.clock import STATE_NAME, TrustedState
    from fieldkit.bundles.truststore import load_trust_store
    from fieldkit.config import data_dir

    try:  # read only: the version screen must not write the laptop's trusted state
        now = TrustedState(data_dir() / STATE_NAME).read().now
        store = load_trust_store(path, load_settings().limits, now)
    except FieldkitError as exc:
        click.echo(f"trust store: {printable(path)} cannot be used: {printable(exc.one_line())}")
        ctx.exit(0)
    click.echo(f"trust store: version {store.version}, {store.fingerprint} ({printable(path)})")
    ctx.exit(0)


cli.add_command(keys_group)
cli.add_command(trust_group)
cli.add_command(bundle_group)
cli.add_command(demo_group)
cli.add_command(identity_group)
cli.add_command(audit_group)
cli.add_command(backoffice_group)
cli.add_command(workorder_group)
cli.add_command(sim_group)
cli.add_command(update)
cli.add_command(rollback)
cli.add_command(discover)
cli.add_command(status)
cli.add_command(history)
cli.add_command(tui)


def _debugging(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("FIELDKIT_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="fieldkit", standalone_mode=False)
    except FieldkitError as exc:
        if _debugging(args):
            raise
        click.echo(f"fieldkit: error: {printable(exc.one_line())}", err=True)
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        return 0
    except click.ClickException as exc:
        hint = f" — see `{exc.ctx.command_path} --help`" if isinstance(exc, click.UsageError) and exc.ctx else ""
        click.echo(f"fieldkit: error: {' '.join(exc.format_message().split())}{hint}", err=True)
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        if _debugging(args):
            raise
        click.echo("fieldkit: interrupted", err=True)
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        if _debugging(args):
            raise
        click.echo(
            f"fieldkit: internal error: {type(exc).__name__}: {printable(' '.join(str(exc).split()))} "
            "— run again with --debug and report it",
            err=True,
        )
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(main())
