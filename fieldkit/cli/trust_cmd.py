"""`fieldkit trust ...`: the laptop's trust store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from fieldkit.bundles.roles import ROLES
from fieldkit.cli.audit_cmd import record_event
from fieldkit.cli.common import (
    EXISTING_FILE,
    console_out,
    load_signing_keys,
    parse_thresholds,
    parse_utc_time,
    print_json,
    resolve_trust_store,
    settings,
    trust_store_option,
    trusted_state,
)
from fieldkit.errors import UsageError

if TYPE_CHECKING:
    from fieldkit.bundles.roles import Role
    from fieldkit.bundles.truststore import RootRole


def _signing_options(function: Any) -> Any:
    function = click.option(
        "--passphrase-file",
        type=EXISTING_FILE,
        help="Passphrase of the signing keys (first line).",
    )(function)
    return click.option(
        "--signing-key",
        "signing_keys",
        multiple=True,
        type=EXISTING_FILE,
        help="A trust-root private key to sign the new version with (repeat to meet the threshold).",
    )(function)


@click.group("trust")
def trust_group() -> None:
    """Manage the trust store: which keys may sign bundles."""


@trust_group.command("init")
@trust_store_option
@click.option(
    "--root-key",
    "root_keys",
    multiple=True,
    required=True,
    type=EXISTING_FILE,
    help="A trust-root private key; its public key becomes a trust root (repeatable).",
)
@click.option("--threshold", "thresholds", multiple=True, help="ROLE=N signatures required (repeatable).")
@click.option("--passphrase-file", type=EXISTING_FILE, help="Passphrase of the root keys (first line).")
@click.option("--force", is_flag=True, help="Replace an existing trust store.")
def init(
    trust_store: Path | None,
    root_keys: tuple[Path, ...],
    thresholds: tuple[str, ...],
    passphrase_file: Path | None,
    force: bool,
) -> None:
    """Create a trust store whose trust roots are the given keys."""
    from fieldkit.bundles import trustops

    path = resolve_trust_store(trust_store)
    store = trustops.init_store(
        path,
        load_signing_keys(root_keys, passphrase_file),
        parse_thresholds(thresholds),
        trusted_state(),
        settings().limits,
        force=force,
    )
    record_event("trust.init", note=f"trust store {path.name} version {store.version}")
    console_out().print(f"created trust store {path} (version {store.version}, {len(store.body.keys)} trust root(s))")


@trust_group.command("add-key")
@trust_store_option
@click.option("--public-key", type=EXISTING_FILE, help="A .pub file to trust.")
@click.option("--certificate", type=EXISTING_FILE, help="An X.509 root certificate (PEM) to pin instead.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice([*ROLES, "ocpp-manufacturer"]),
    help="Role(s) granted; for a .pub file, defaults to the role recorded in it.",
)
@click.option("--name", help="A name shown in reports [default: from the key file].")
@click.option("--vendor", "vendors", multiple=True, help="Restrict to this vendor (repeatable).")
@click.option("--model", "models", multiple=True, help="Restrict to this model (repeatable).")
@click.option("--not-before", help="Key valid from (ISO 8601).")
@click.option("--not-after", help="Key valid until (ISO 8601).")
@click.option("--threshold", "thresholds", multiple=True, help="Also set ROLE=N (repeatable).")
@_signing_options
def add_key(
    trust_store: Path | None,
    public_key: Path | None,
    certificate: Path | None,
    roles: tuple[str, ...],
    name: str | None,
    vendors: tuple[str, ...],
    models: tuple[str, ...],
    not_before: str | None,
    not_after: str | None,
    thresholds: tuple[str, ...],
    signing_keys: tuple[Path, ...],
    passphrase_file: Path | None,
) -> None:
    """Trust a key or pin an X.509 root; writes a new, signed version."""
    from fieldkit.bundles import keys, trustops
    from fieldkit.bundles.truststore import Scope

    if (public_key is None) == (certificate is None):
        raise UsageError("give exactly one of --public-key and --certificate")
    path = resolve_trust_store(trust_store)
    scope = Scope(vendors=list(vendors), models=list(models))
    signers = load_signing_keys(signing_keys, passphrase_file)
    state, limits = trusted_state(), settings().limits
    if public_key is not None:
        public, meta = keys.load_public_key(public_key)
        granted = list(roles) or ([meta.role] if meta.role in ROLES else [])
        if not granted or "ocpp-manufacturer" in granted:
            raise UsageError("no usable --role for this key", "pass --role trust-root, release, metrology or dispatch")
        store = trustops.add_key(
            path,
            public,
            name or meta.name or public_key.stem,
            cast("list[Role]", granted),
            scope,
            parse_utc_time(not_before, "--not-before"),
            parse_utc_time(not_after, "--not-after"),
            parse_thresholds(thresholds),
            signers,
            state,
            limits,
        )
        kid = keys.key_id(public)
    else:
        from cryptography import x509

        assert certificate is not None
        try:
            cert = x509.load_pem_x509_certificate(certificate.read_bytes())
        except ValueError as exc:
            raise UsageError(f"{certificate} is not a PEM certificate") from exc
        granted = list(roles) or ["release"]
        if "trust-root" in granted:
            raise UsageError(
                "an X.509 root cannot be a trust-root",
                "use release, metrology or ocpp-manufacturer",
            )
        store = trustops.add_root(
            path,
            cert,
            name or cert.subject.rfc4514_string(),
            cast("list[RootRole]", granted),
            scope,
            signers,
            state,
            limits,
        )
        kid = keys.certificate_key_id(cert)
    record_event("trust.add-key", note=f"trusted {kid} as {', '.join(granted)}; version {store.version}")
    console_out().print(f"trusted {kid} as {', '.join(granted)}; trust store now version {store.version}")


@trust_group.command("revoke")
@trust_store_option
@click.argument("key_id")
@_signing_options
def revoke(
    trust_store: Path | None,
    key_id: str,
    signing_keys: tuple[Path, ...],
    passphrase_file: Path | None,
) -> None:
    """Revoke KEY_ID (a key or certificate key id); writes a new, signed version."""
    from fieldkit.bundles import trustops

    if len(key_id) != 64 or any(c not in "0123456789abcdef" for c in key_id):
        raise UsageError(
            f"{key_id!r} is not a key id",
            "key ids are 64 lowercase hex digits; see `fieldkit trust show`",
        )
    path = resolve_trust_store(trust_store)
    store = trustops.revoke(
        path,
        key_id,
        load_signing_keys(signing_keys, passphrase_file),
        trusted_state(),
        settings().limits,
    )
    record_event("trust.revoke", note=f"revoked {key_id}; version {store.version}")
    console_out().print(f"revoked {key_id}; trust store now version {store.version}")


@trust_group.command("show")
@trust_store_option
@click.option("--json", "as_json", is_flag=True, help="Print the verified store as JSON.")
def show(trust_store: Path | None, as_json: bool) -> None:
    """Show the trust store after checking its signatures."""
    from rich.table import Table

    from fieldkit.bundles import trustops

    path = resolve_trust_store(trust_store)
    store = trustops.open_store(path, settings().limits, trusted_state())
    body = store.body
    if as_json:
        print_json(
            {"path": str(path), "verified": True, "fingerprint": store.fingerprint, **body.model_dump(mode="json")}
        )
        return
    out = console_out()
    out.print(
        f"[bold]{path}[/]  version {body.version}  issued {body.issued_at:%Y-%m-%d %H:%M} UTC"
        + ("  [yellow]DEMO[/]" if body.demo else "")
    )
    out.print(f"fingerprint {store.fingerprint}")
    out.print("thresholds: " + ", ".join(f"{r}={body.threshold(r)}" for r in ROLES))
    table = Table("key id", "name", "kind", "roles", "scope", "valid", "status")
    for key in body.keys:
        window = f"{key.not_before:%Y-%m-%d}" if key.not_before else "-"
        window += f" .. {key.not_after:%Y-%m-%d}" if key.not_after else " .. -"
        table.add_row(
            key.key_id[:16],
            key.name,
            key.algorithm,
            ", ".join(key.roles),
            key.scope.describe(),
            window,
            "REVOKED" if body.is_revoked(key.key_id) else "ok",
        )
    for root in body.x509_roots:
        table.add_row(
            root.key_id[:16],
            root.name,
            "x509 root",
            ", ".join(root.roles),
            root.scope.describe(),
            "-",
            "REVOKED" if body.is_revoked(root.key_id) else "ok",
        )
    out.print(table)
    if body.revoked_key_ids:
        out.print("revoked: " + ", ".join(k[:16] for k in body.revoked_key_ids))


@trust_group.command("update")
@trust_store_option
@click.argument("file", type=EXISTING_FILE)
def update(trust_store: Path | None, file: Path) -> None:
    """Install FILE as the new trust store if it is newer and signed by the current trust roots."""
    from fieldkit.bundles import trustops

    path = resolve_trust_store(trust_store)
    store = trustops.install_update(path, file.read_bytes(), trusted_state(), settings().limits)
    record_event("trust.update", note=f"trust store {path.name} updated to version {store.version}")
    console_out().print(f"trust store updated to version {store.version}")
