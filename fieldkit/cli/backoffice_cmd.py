"""`fieldkit backoffice ...`: run the back office, enroll laptops, report on the fleet."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import click

from fieldkit import config
from fieldkit.cli.common import EXISTING_FILE, OUTPUT_FILE, console_out, print_json, require_free_port
from fieldkit.errors import UsageError

MAX_URL_CHARS = 2048


def default_db_url() -> str:
    from fieldkit.backoffice.db import sqlite_url

    path = config.data_dir() / "backoffice.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return sqlite_url(str(path))


def _db_option(function: Any) -> Any:
    return click.option(
        "--db",
        "db_url",
        help="SQLAlchemy URL: sqlite:///FILE or postgresql://USER@HOST/DB "
        "[default: an SQLite file in fieldkit's data directory].",
    )(function)


def _sessions(db_url: str | None) -> Any:
    from fieldkit.backoffice.db import make_engine, session_factory

    try:
        return session_factory(make_engine(db_url or default_db_url()))
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise UsageError(
            f"cannot open the back-office database: {type(exc).__name__}: {str(exc).splitlines()[0]}", "check --db"
        ) from exc


def _check_backoffice_url(url: str) -> None:
    """https:// to a host (plain http:// only to this machine), as the laptop's sync will insist."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise UsageError(f"--url {url!r} is not a URL", "e.g. https://backoffice.example.com") from exc
    if len(url) > MAX_URL_CHARS or not parts.hostname or parts.scheme not in ("https", "http"):
        raise UsageError(f"--url {url!r} is not an https:// URL with a host", "e.g. https://backoffice.example.com")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(f"--url {url!r} is plain HTTP to another machine", "use https:// (http only on loopback)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.group("backoffice")
def backoffice_group() -> None:
    """The back office: ingest audit trails, enroll laptops, report on the fleet."""


@backoffice_group.command("serve")
@_db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=click.IntRange(1, 65535))
@click.option("--tls-cert", type=EXISTING_FILE, help="Server certificate (PEM).")
@click.option("--tls-key", type=EXISTING_FILE, help="Server private key (PEM).")
def serve(db_url: str | None, host: str, port: int, tls_cert: Path | None, tls_key: Path | None) -> None:
    """Serve the sync API, reports, and OpenAPI docs at /docs, until interrupted."""
    import uvicorn

    from fieldkit.backoffice.app import create_app

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if tls_cert is None and not _is_loopback(host):
        raise UsageError(f"refusing to serve plain HTTP on {host}", "pass --tls-cert and --tls-key")
    scheme = "https" if tls_cert else "http"
    require_free_port(host, port)
    app = create_app(db_url or default_db_url())
    click.echo(f"fieldkit back office listening on {scheme}://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="warning",
        access_log=False,
    )


@backoffice_group.command("enroll-laptop")
@_db_option
@click.option("--public-key", required=True, type=EXISTING_FILE, help="The laptop.pub of `fieldkit identity init`.")
@click.option("--name", required=True, help="A name for the laptop (e.g. asset tag).")
@click.option("--url", "backoffice_url", required=True, help="The back office URL the laptop will sync to.")
@click.option("--ca-cert", type=EXISTING_FILE, help="CA certificate the laptop should trust for that URL.")
@click.option(
    "--out",
    required=True,
    type=OUTPUT_FILE,
    help="Credential file to hand to the laptop (contains its secret token; owner-only).",
)
@click.option("--reissue", is_flag=True, help="The laptop is enrolled already: issue a new token, retire the old.")
def enroll_laptop(
    db_url: str | None,
    public_key: Path,
    name: str,
    backoffice_url: str,
    ca_cert: Path | None,
    out: Path,
    reissue: bool,
) -> None:
    """Register a laptop's public key and issue its credential file.

    A laptop enrolled before is refused unless --reissue is given: a second
    enrollment would otherwise silently cut off the credential it uses.
    """
    from fieldkit.backoffice.ingest import enroll_laptop as enroll
    from fieldkit.fsutil import read_regular_file

    _check_backoffice_url(backoffice_url)
    laptop_id, token = enroll(_sessions(db_url)(), read_regular_file(public_key, 64 * 1024), name, reissue)
    document = {
        "backoffice_url": backoffice_url,
        "laptop_id": laptop_id,
        "token": token,
        "ca_cert": str(ca_cert.resolve()) if ca_cert else None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    console_out().print(
        f"enrolled {laptop_id} ({name}); credential written to {out} — copy it to the laptop "
        "as identity/backoffice-credential.json in fieldkit's data directory"
    )


@backoffice_group.command("create-operator")
@_db_option
@click.option("--name", required=True)
@click.option(
    "--out",
    required=True,
    type=OUTPUT_FILE,
    help="File to write the operator token to (owner-only).",
)
def create_operator(db_url: str | None, name: str, out: Path) -> None:
    """Issue a token for back-office staff to read reports over HTTP."""
    from fieldkit.backoffice.ingest import create_operator as create

    token = create(_sessions(db_url)(), name)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    console_out().print(f"operator token for {name} written to {out}")


@backoffice_group.command("publish-trust-store")
@_db_option
@click.argument("file", type=EXISTING_FILE)
def publish_trust_store(db_url: str | None, file: Path) -> None:
    """Offer a signed trust store to laptops; they install it under their own rules."""
    from fieldkit.backoffice.ingest import publish_trust_store as publish

    version = publish(_sessions(db_url)(), file.read_bytes())
    console_out().print(f"published trust store version {version}")


@backoffice_group.command("publish-work-order")
@_db_option
@click.argument("file", type=EXISTING_FILE)
def publish_work_order(db_url: str | None, file: Path) -> None:
    """Offer a signed work order to laptops; they verify it against their own trust store."""
    from fieldkit.backoffice.ingest import publish_work_order as publish

    order_id = publish(_sessions(db_url)(), file.read_bytes())
    console_out().print(f"published work order {order_id}")


@backoffice_group.command("report")
@_db_option
@click.argument("kind", type=click.Choice(["chargers", "bundles", "fragmentation", "chargers-csv"]))
def report(db_url: str | None, kind: str) -> None:
    """Print a fleet report as JSON (or the charger report as CSV)."""
    from fieldkit.backoffice import reports

    with _sessions(db_url)() as session:
        if kind == "chargers-csv":
            click.echo(reports.chargers_csv(session), nl=False)
            return
        print_json(
            {"chargers": reports.chargers, "bundles": reports.bundles, "fragmentation": reports.fragmentation}[kind](
                session
            )
        )
