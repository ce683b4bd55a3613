"""`fieldkit bundle ...`: make, sign, verify and inspect offline bundles."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from fieldkit.cli.common import (
    EXISTING_FILE,
    OUTPUT_FILE,
    console_out,
    passphrase_for,
    print_json,
    resolve_trust_store,
    settings,
    shown,
    trust_store_option,
    trusted_state,
)
from fieldkit.errors import UsageError
from fieldkit.printable import printable

_STATUS_STYLE = {"passed": "green", "failed": "bold red", "skipped": "dim", "warning": "yellow"}


@click.group("bundle")
def bundle_group() -> None:
    """Create, sign, verify and inspect offline firmware bundles."""


def _parse_payloads(values: tuple[str, ...]) -> dict[str, Path]:
    payloads: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--payload {value!r} is not NAME=PATH", "e.g. --payload rootfs=build/rootfs.raucb")
        if name in payloads:
            raise UsageError(f"--payload {name} given twice")
        payloads[name] = Path(path)
    return payloads


@bundle_group.command("create")
@click.option(
    "--manifest",
    "manifest_path",
    required=True,
    type=EXISTING_FILE,
    help="Manifest JSON; size_bytes, sha256 and payload are filled in.",
)
@click.option("--payload", "payloads", multiple=True, required=True, help="COMPONENT=PATH (repeatable).")
@click.option(
    "--out",
    required=True,
    type=OUTPUT_FILE,
    help="FILE.fwbundle to write.",
)
def create(manifest_path: Path, payloads: tuple[str, ...], out: Path) -> None:
    """Create an unsigned bundle from a manifest and payload files."""
    from fieldkit.bundles.build import create_bundle, read_manifest_template

    limits = settings().limits
    manifest = create_bundle(read_manifest_template(manifest_path, limits), _parse_payloads(payloads), out, limits)
    console_out().print(
        f"wrote {out}: {manifest.vendor} {manifest.version}, {len(manifest.components)} component(s), "
        "unsigned — sign it with `fieldkit bundle sign`"
    )


@bundle_group.command("sign")
@click.argument("bundle", type=EXISTING_FILE)
@click.option("--key", "key_path", required=True, type=EXISTING_FILE, help="Private key (.key).")
@click.option(
    "--certificate-chain",
    type=EXISTING_FILE,
    help="PEM chain for the key, leaf first, when signing through an X.509 root.",
)
@click.option("--passphrase-file", type=EXISTING_FILE, help="The key's passphrase (first line).")
def sign(bundle: Path, key_path: Path, certificate_chain: Path | None, passphrase_file: Path | None) -> None:
    """Add a signature to BUNDLE, keeping the ones it has."""
    from fieldkit.bundles import keys
    from fieldkit.bundles.build import read_certificate_pem, sign_bundle

    private, meta = keys.load_private_key(key_path, passphrase_for(key_path, passphrase_file))
    chain = None
    if certificate_chain is not None:
        pem = read_certificate_pem(certificate_chain)
        chain = [f"-----BEGIN CERTIFICATE-----{part}" for part in pem.split("-----BEGIN CERTIFICATE-----")[1:]]
    result = sign_bundle(bundle, private, settings().limits, chain)
    verb = "renewed" if result.replaced else "added"
    console_out().print(
        f"{verb} signature by {meta.name or key_path.stem} ({result.key_id[:16]}…); "
        f"{result.signature_count} signature(s) on {bundle.name}"
    )


def _charger_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--model", help="The charger's model, to check compatibility."),
            click.option("--hw-rev", "hw_rev", help="The charger's hardware revision."),
            click.option(
                "--installed-version",
                help="The version the charger runs (checks minimum installed version).",
            ),
            click.option(
                "--installed-security-version",
                type=click.IntRange(min=0),
                help="The charger's anti-rollback floor.",
            ),
        ]
    ):
        function = option(function)
    return function


def _run_verification(
    bundle: Path,
    trust_store: Path | None,
    model: str | None,
    hw_rev: str | None,
    installed_version: str | None,
    installed_security_version: int | None,
    check_payloads: bool = True,
) -> Any:
    from fieldkit.bundles import trustops
    from fieldkit.bundles.semver import is_semver
    from fieldkit.bundles.verify import ChargerFacts, verify_bundle

    if hw_rev is not None and model is None:
        raise UsageError("--hw-rev needs --model")
    if installed_version is not None and not is_semver(installed_version):
        raise UsageError(f"--installed-version {installed_version!r} is not a version such as 2.3.0")
    cfg, state = settings(), trusted_state()
    store = trustops.open_store(resolve_trust_store(trust_store), cfg.limits, state)
    facts = ChargerFacts(model, hw_rev, installed_version, installed_security_version)
    return verify_bundle(bundle, store.body, state, cfg, facts, check_payloads)


@bundle_group.command("verify")
@click.argument("bundle", type=EXISTING_FILE)
@trust_store_option
@_charger_options
@click.option("--json", "as_json", is_flag=True, help="Print every check and its result as JSON.")
def verify(
    bundle: Path,
    trust_store: Path | None,
    model: str | None,
    hw_rev: str | None,
    installed_version: str | None,
    installed_security_version: int | None,
    as_json: bool,
) -> None:
    """Verify BUNDLE; exit 0 only if every check passes.

    Checks, in order: container, signatures, manifest, authorization,
    freshness, compatibility, anti-rollback, payloads, ocpp-signatures.
    """
    report = _run_verification(bundle, trust_store, model, hw_rev, installed_version, installed_security_version)
    if not report.valid:
        _record_refusal(bundle, report)
    if as_json:
        print_json(report.as_dict())
        if not report.valid:
            raise SystemExit(3)
        return
    report.raise_if_invalid()
    manifest = report.manifest
    out = console_out()
    warnings = [c for c in report.checks if c.status == "warning"]
    for warning in warnings:
        out.print(f"[yellow]warning:[/] {shown(warning.message)} — {shown(warning.hint)}")
    out.print(
        f"[green]valid[/]: {shown(bundle.name)} — {shown(manifest.vendor)} {shown(manifest.version)}, security "
        f"version {manifest.security_version}, signed by {shown(', '.join(s.name for s in report.signers if s.usable))}"
    )


def _record_refusal(bundle: Path, report: Any) -> None:
    """Refusals are audited: a technician who was stopped by a bad bundle leaves a trace of it."""
    from fieldkit.audit.entry import BundleRef
    from fieldkit.cli.audit_cmd import record_event

    failure = report.failure
    manifest = report.manifest
    ref = BundleRef(
        bundle_id=manifest.bundle_id if manifest else bundle.name[:128], version=manifest.version if manifest else None
    )
    # OCPP FirmwareStatus where one fits: an authenticity failure is InvalidSignature.
    status = "InvalidSignature" if failure.name in ("signatures", "authorization", "ocpp-signatures") else None
    record_event("bundle.refused", bundle=ref, status=status, error=f"{failure.name}/{failure.code}: {failure.message}")


@bundle_group.command("inspect")
@click.argument("bundle", type=EXISTING_FILE)
@trust_store_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def inspect(bundle: Path, trust_store: Path | None, as_json: bool) -> None:
    """Show a bundle's components, versions, signers, expiry, compatibility and release notes.

    The manifest is shown only once its signatures verify: fieldkit never
    displays unauthenticated claims as if they were facts. Exit 0 for a
    valid bundle, 3 for one that fails verification (shown all the same).
    """
    report = _run_verification(bundle, trust_store, None, None, None, None)
    if as_json:
        print_json(report.as_dict())
    else:
        _show_inspection(bundle, report)
    report.raise_if_invalid()  # shown all the same; a script must not take a broken bundle for a good one


def _show_inspection(bundle: Path, report: Any) -> None:
    from rich.markdown import Markdown
    from rich.table import Table

    out = console_out()
    failure = report.failure
    verdict = (
        "[green]valid[/]" if failure is None else f"[bold red]invalid[/] ({failure.name}: {shown(failure.message)})"
    )
    out.print(f"[bold]{shown(bundle.name)}[/]  {verdict}")
    signers = Table("signer", "kind", "roles", "key id", "status", title="Signatures")
    for signer in report.signers:
        signers.add_row(
            shown(signer.name or "?"),
            shown(signer.kind),
            shown(", ".join(signer.roles) or "-"),
            shown(signer.key_id[:16]),
            shown(signer.problem or "ok"),
        )
    out.print(signers)
    manifest = report.manifest
    if manifest is None:
        out.print("[dim]the manifest is not shown: it could not be authenticated[/]")
        return
    out.print(
        f"{shown(manifest.vendor)} {shown(manifest.version)}  bundle {shown(manifest.bundle_id)}  security version "
        f"{manifest.security_version}"
    )
    out.print(f"created {manifest.created_at:%Y-%m-%d %H:%M} UTC, expires {manifest.expires_at:%Y-%m-%d %H:%M} UTC")
    compat = Table("model", "hardware revisions", "min installed", title="Compatibility")
    for row in manifest.compatibility:
        compat.add_row(
            shown(row.model), shown(", ".join(row.hardware_revisions)), shown(row.min_installed_version or "-")
        )
    out.print(compat)
    components = Table(
        "#",
        "component",
        "target",
        "install",
        "version",
        "size",
        "sha256",
        "flags",
        title="Components",
    )
    for component in manifest.components_in_order():
        flags = ", ".join(
            f
            for f, on in (
                ("metrology", component.metrology_relevant),
                ("ocpp-signed", component.ocpp is not None),
            )
            if on
        )
        components.add_row(
            str(component.order),
            shown(component.name),
            shown(component.target),
            shown(component.ways_text),
            shown(component.version),
            f"{component.size_bytes:,}",
            component.sha256[:16] + "…",
            flags or "-",
        )
    out.print(components)
    if manifest.release_notes:
        out.print(Markdown(printable(manifest.release_notes)))


@bundle_group.command("import-ocpp")
@click.option(
    "--firmware",
    required=True,
    type=EXISTING_FILE,
    help="The firmware file as the OEM shipped it.",
)
@click.option(
    "--signature",
    required=True,
    type=EXISTING_FILE,
    help="The OCPP signature (base64 text or DER).",
)
@click.option("--certificate", required=True, type=EXISTING_FILE, help="The OCPP signing certificate (PEM).")
@click.option("--vendor", required=True)
@click.option("--model", "models", multiple=True, required=True, help="Compatible model (repeatable).")
@click.option(
    "--hw-rev",
    "hw_revs",
    multiple=True,
    required=True,
    help="Compatible hardware revision (repeatable).",
)
@click.option("--version", "fw_version", required=True, help="Firmware version (semver).")
@click.option("--security-version", required=True, type=click.IntRange(min=0))
@click.option("--component", default="firmware", show_default=True, help="Component name.")
@click.option("--target", default="firmware", show_default=True, help="Target component on the charger.")
@click.option(
    "--install-method",
    default="script",
    show_default=True,
    type=click.Choice(["rauc", "swupdate", "mender", "script", "mcumgr-smp", "dfu", "uboot-ymodem"]),
)
@click.option("--expires-in-days", default=365, show_default=True, type=click.IntRange(min=1, max=3650))
@click.option("--release-notes", type=EXISTING_FILE, help="Markdown file.")
@click.option("--metrology-relevant", is_flag=True)
@click.option("--out", required=True, type=OUTPUT_FILE)
@click.option("--key", "key_path", type=EXISTING_FILE, help="Also sign the new bundle with this key.")
@click.option("--passphrase-file", type=EXISTING_FILE)
def import_ocpp(
    firmware: Path,
    signature: Path,
    certificate: Path,
    vendor: str,
    models: tuple[str, ...],
    hw_revs: tuple[str, ...],
    fw_version: str,
    security_version: int,
    component: str,
    target: str,
    install_method: str,
    expires_in_days: int,
    release_notes: Path | None,
    metrology_relevant: bool,
    out: Path,
    key_path: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Wrap an OCPP signed firmware file (firmware + signature + signing certificate) into a bundle."""
    from fieldkit.bundles import keys
    from fieldkit.bundles.build import (
        OcppImport,
        import_ocpp,
        read_certificate_pem,
        read_ocpp_signature,
        sign_bundle,
    )

    limits = settings().limits
    now = trusted_state().read().now.replace(microsecond=0)
    spec = OcppImport(
        firmware=firmware,
        signature_b64=read_ocpp_signature(signature),
        certificate_pem=read_certificate_pem(certificate),
        vendor=vendor,
        models=list(models),
        hardware_revisions=list(hw_revs),
        version=fw_version,
        security_version=security_version,
        component=component,
        target=target,
        install_method=install_method,
        created_at=now,
        expires_at=now + dt.timedelta(days=expires_in_days),
        release_notes=release_notes.read_text(encoding="utf-8") if release_notes else "",
        metrology_relevant=metrology_relevant,
    )
    import_ocpp(spec, out, limits)
    message = f"wrote {out} wrapping {firmware.name}"
    if key_path is not None:
        private, _ = keys.load_private_key(key_path, passphrase_for(key_path, passphrase_file))
        sign_bundle(out, private, limits)
        message += ", signed"
    else:
        message += ", unsigned — sign it with `fieldkit bundle sign`"
    console_out().print(message)
