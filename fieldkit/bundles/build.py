"""Making bundles: create from a manifest template, sign, wrap OCPP firmware.

These are the release engineer's tools. They validate everything they write
with the same schema the verifier uses, so a bundle that `create` accepts is
one the verifier can accept once signed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from fieldkit.bundles import keys
from fieldkit.bundles.container import (
    MANIFEST_NAME,
    SIGNATURES_NAME,
    BundleContainer,
    PayloadSource,
    replace_signatures,
    write_container,
)
from fieldkit.bundles.manifest import (
    SCHEMA_VERSION,
    TRANSPORT_OF_METHOD,
    Manifest,
    manifest_template_errors,
    parse_manifest,
    payload_member_for,
)
from fieldkit.bundles.signatures import (
    SignatureEntry,
    SignaturesFile,
    encode_signatures,
    manifest_message,
)
from fieldkit.config import Limits
from fieldkit.errors import BundleBuildError, BundleRejectedError
from fieldkit.fsutil import sha256_file
from fieldkit.safejson import JsonShapeError, parse_bounded, parse_for_check


def read_manifest_template(path: Path, limits: Limits) -> dict[str, Any]:
    try:
        document = parse_bounded(path.read_bytes(), limits.max_manifest_bytes, limits.max_json_depth)
    except OSError as exc:
        raise BundleBuildError(f"cannot read manifest {path}: {exc.strerror}", "check the path") from exc
    except JsonShapeError as exc:
        raise BundleBuildError(f"manifest {path}: {exc}", "fix the JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("components"), list):
        raise BundleBuildError(f"manifest {path} has no components list", "see offline_bundles/README.md")
    return document


def create_bundle(template: dict[str, Any], payloads: dict[str, Path], out: Path, limits: Limits) -> Manifest:
    """Fill in payload sizes and hashes, validate, and write an unsigned bundle."""
    components = template["components"]
    names = [c.get("name") for c in components if isinstance(c, dict)]
    for name in payloads:
        if name not in names:
            raise BundleBuildError(
                f"--payload {name}=... names no component of the manifest",
                f"components are: {', '.join(map(str, names))}",
            )
    for component in components:
        if not isinstance(component, dict):
            raise BundleBuildError("every component must be a JSON object")
        component_name = str(component.get("name"))
        if component_name not in payloads:
            raise BundleBuildError(
                f"no --payload given for component {component_name!r}", f"add --payload {component_name}=PATH"
            )
        source = payloads[component_name]
        if not source.is_file():
            raise BundleBuildError(f"payload {source} is not a readable file", "check the path")
        size, digest = sha256_file(source, chunk_bytes=limits.read_chunk_bytes)
        for key, actual in (("size_bytes", size), ("sha256", digest)):
            if key in component and component[key] != actual:
                raise BundleBuildError(
                    f"component {component_name!r}: the manifest says {key} {component[key]}, the file has {actual}",
                    "remove the field to have it filled in, or pass the right file",
                )
        component["size_bytes"], component["sha256"] = size, digest
        component.setdefault("payload", payload_member_for(component_name))
    errors = manifest_template_errors(template)
    if errors:
        raise BundleBuildError(f"the manifest is invalid: {errors[0]}", "see offline_bundles/README.md for the format")
    manifest_bytes = json.dumps(template, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    sources = [PayloadSource(c["payload"], payloads[c["name"]]) for c in components]
    write_container(out, manifest_bytes, sources, encode_signatures([]), limits.read_chunk_bytes)
    return Manifest.model_validate(template)


@dataclass(frozen=True)
class SignResult:
    key_id: str
    replaced: bool
    signature_count: int


def sign_bundle(
    path: Path,
    private_key: keys.PrivateKey,
    limits: Limits,
    certificate_chain: list[str] | None = None,
) -> SignResult:
    """Add (or renew) one signature, keeping the others."""
    container = BundleContainer.open(path, limits)
    manifest_bytes = container.read_small(MANIFEST_NAME, limits.max_manifest_bytes, "manifest-too-large", "manifest")
    parse_manifest(
        parse_for_check(manifest_bytes, "manifest", "manifest", limits.max_manifest_bytes, limits.max_json_depth)
    )
    raw = container.read_small(SIGNATURES_NAME, limits.max_signatures_bytes, "signatures-too-large", "signatures")
    try:
        existing = SignaturesFile.model_validate(
            parse_bounded(raw, limits.max_signatures_bytes, limits.max_json_depth)
        ).signatures
    except (JsonShapeError, ValueError) as exc:
        raise BundleRejectedError("signatures", "signatures-invalid", f"signatures.json is unreadable: {exc}") from exc
    public = private_key.public_key()
    kid = keys.key_id(public)
    if certificate_chain:
        leaf = x509.load_pem_x509_certificate(certificate_chain[0].encode("ascii"))
        if keys.certificate_key_id(leaf) != kid:
            raise BundleBuildError(
                "the certificate does not belong to the signing key",
                "pass the certificate issued for this key",
            )
    signature = keys.sign(private_key, manifest_message(manifest_bytes))
    entry = SignatureEntry(
        key_id=kid,
        algorithm=keys.algorithm_of(public),
        signature=base64.b64encode(signature).decode("ascii"),
        certificate_chain=certificate_chain or None,
    )
    kept = [e for e in existing if e.key_id != kid]
    entries = [*kept, entry]
    if len(entries) > limits.max_signatures:
        raise BundleBuildError(f"a bundle carries at most {limits.max_signatures} signatures")
    replace_signatures(container, encode_signatures(entries))
    return SignResult(kid, len(kept) != len(existing), len(entries))


def read_ocpp_signature(path: Path) -> str:
    """An OCPP signature file: base64 text (as OCPP sends it) or raw DER bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleBuildError(f"cannot read signature {path}: {exc.strerror}", "check the path") from exc
    text = b"".join(data.split())
    try:
        base64.b64decode(text, validate=True)
        return text.decode("ascii")
    except (binascii.Error, ValueError):
        return base64.b64encode(data).decode("ascii")


def read_certificate_pem(path: Path) -> str:
    try:
        data = path.read_bytes()
        certs = x509.load_pem_x509_certificates(data)
    except OSError as exc:
        raise BundleBuildError(f"cannot read certificate {path}: {exc.strerror}", "check the path") from exc
    except ValueError as exc:
        raise BundleBuildError(f"{path} is not a PEM certificate", "pass the signing certificate in PEM form") from exc
    from cryptography.hazmat.primitives import serialization

    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


@dataclass(frozen=True)
class OcppImport:
    firmware: Path
    signature_b64: str
    certificate_pem: str
    vendor: str
    models: list[str]
    hardware_revisions: list[str]
    version: str
    security_version: int
    component: str
    target: str
    install_method: str
    expires_at: dt.datetime
    created_at: dt.datetime
    release_notes: str = ""
    metrology_relevant: bool = False


def import_ocpp(spec: OcppImport, out: Path, limits: Limits) -> Manifest:
    """Wrap an OCPP signed firmware file into an (unsigned) bundle."""
    template: dict[str, Any] = {
        "schema": "fieldkit-bundle",
        "schema_version": SCHEMA_VERSION,
        "bundle_id": f"{spec.vendor}-{spec.component}-{spec.version}".replace(" ", "-"),
        "vendor": spec.vendor,
        "version": spec.version,
        "security_version": spec.security_version,
        "created_at": spec.created_at.isoformat().replace("+00:00", "Z"),
        "expires_at": spec.expires_at.isoformat().replace("+00:00", "Z"),
        "compatibility": [{"model": m, "hardware_revisions": spec.hardware_revisions} for m in spec.models],
        "release_notes": spec.release_notes,
        "components": [
            {
                "name": spec.component,
                "target": spec.target,
                "install": {TRANSPORT_OF_METHOD[spec.install_method]: [spec.install_method]},
                "version": spec.version,
                "metrology_relevant": spec.metrology_relevant,
                "order": 0,
                "ocpp": {
                    "signature": spec.signature_b64,
                    "signing_certificate": spec.certificate_pem,
                },
            }
        ],
    }
    return create_bundle(template, {spec.component: spec.firmware}, out, limits)
