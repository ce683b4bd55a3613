"""What every command shares: settings, state, the trust store, output, passphrases."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import click

from fieldkit import config
from fieldkit.errors import KeyFileError, UsageError
from fieldkit.fsutil import not_a_file
from fieldkit.printable import printable

if TYPE_CHECKING:
    from fieldkit.bundles.roles import Role


class RegularFile(click.Path):
    """A path to read: a regular file (it must exist unless ``exists=False``).

    A FIFO, device or socket is refused while the command line is parsed: stat
    never blocks, where opening a FIFO for reading waits for a writer forever.
    """

    def __init__(self, exists: bool = True) -> None:
        super().__init__(dir_okay=False, exists=exists, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        try:
            kind = not_a_file(os.stat(path).st_mode)
        except OSError:
            return path  # absent (allowed here) or unreadable: the command words it
        if kind is not None:
            self.fail(f"{printable(path)} is {kind}, not a regular file", param, ctx)
        return path


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange, without NaN (which compares false with both bounds and so passes them)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


def require_free_port(host: str, port: int) -> None:
    """Refuse, in words, a port something else listens on (before a server library fails on it in its own)."""
    import errno
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UsageError(f"cannot listen on {host!r}: it is not an address of this machine", "use 127.0.0.1") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no conflict
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} is in use on {host}", "stop what listens there (`ss -ltnp`) or choose another --port"
                ) from exc
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", "use another --host or --port") from exc


class OutputFile(click.Path):
    """A file to write: its directory must exist, and it may not be a directory, FIFO or device."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = cast(Path, super().convert(value, param, ctx))  # path_type=Path
        if str(path) == "-":
            return path
        if not path.parent.is_dir():
            self.fail(f"the directory {printable(path.parent)} does not exist", param, ctx)
        with contextlib.suppress(FileNotFoundError):
            if not_a_file(os.stat(path).st_mode) is not None:
                self.fail(f"{printable(path)} exists and is not a regular file", param, ctx)
        return path


# An option naming a file that must already exist, and be a file.
EXISTING_FILE = RegularFile()
# A file to read that may be absent (the command says what to do then).
INPUT_FILE = RegularFile(exists=False)
OUTPUT_FILE = OutputFile()


PIPED_WIDTH: Final = 1000  # a pipe has no width: tables keep every column whole for grep, less or a file


def console_out() -> Any:
    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH
    return Console(highlight=False, soft_wrap=True, width=width)


def shown(value: object) -> str:
    """Outside text for a rich console: control characters escaped and ``[...]`` never read as markup."""
    from rich.markup import escape

    return escape(printable(value))


def settings() -> config.Settings:
    return config.load_settings()


def trusted_state() -> Any:
    from fieldkit.bundles.clock import STATE_NAME, TrustedState

    state = TrustedState(config.data_dir() / STATE_NAME)
    warning = state.loss_warning()
    if warning and config.default_trust_store_path().exists():  # a laptop in use, not one being set up
        click.echo(f"warning: {printable(warning)}", err=True)
    return state


def trust_store_option(function: Any) -> Any:
    return click.option(
        "--trust-store",
        "trust_store",
        type=INPUT_FILE,
        default=None,
        help="Trust store file [default: trust-store.json in fieldkit's data directory].",
    )(function)


def resolve_trust_store(path: Path | None) -> Path:
    return path if path is not None else config.default_trust_store_path()


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def passphrase_for(key_path: Path, passphrase_file: Path | None) -> bytes | None:
    """The passphrase of an encrypted key: from a file, else a prompt on a terminal."""
    from fieldkit.bundles import keys

    if passphrase_file is not None:
        return keys.read_passphrase_file(passphrase_file)
    if not keys.is_encrypted(key_path):
        return None
    if not sys.stdin.isatty():
        raise KeyFileError(
            f"{key_path} is encrypted and there is no terminal to ask for its passphrase",
            "pass --passphrase-file",
        )
    return click.prompt(f"Passphrase for {key_path.name}", hide_input=True).encode("utf-8")


def load_signing_keys(paths: tuple[Path, ...], passphrase_file: Path | None) -> list[Any]:
    from fieldkit.bundles import keys

    if not paths:
        raise UsageError("no signing key given", "pass --signing-key with a trust-root private key")
    return [keys.load_private_key(p, passphrase_for(p, passphrase_file))[0] for p in paths]


def parse_thresholds(values: tuple[str, ...]) -> dict[Role, int]:
    from fieldkit.bundles.roles import ROLES

    result: dict[Role, int] = {}
    for value in values:
        role, sep, count = value.partition("=")
        if not sep or role not in ROLES or not count.isdigit() or int(count) < 1:
            raise UsageError(
                f"--threshold {value!r} is not ROLE=N",
                "use e.g. --threshold release=2 (roles: trust-root, release, metrology, dispatch)",
            )
        result[cast("Role", role)] = int(count)
    return result


def parse_utc_time(value: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 option value; a time without a zone is taken as UTC."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"{option} {value!r} is not a date", "use ISO 8601, e.g. 2026-12-01T08:00:00Z") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
