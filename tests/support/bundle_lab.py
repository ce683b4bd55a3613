"""A complete, throwaway PKI and bundle factory for tests.

One BundleLab per test session: keys for every role and failure mode, X.509
hierarchies (pinned, unpinned, short-lived, wrong usage), a trust store that
pins them, and helpers that build bundles with any knob turned.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fieldkit.bundles import keys
from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.container import PayloadSource, write_container
from fieldkit.bundles.signatures import SignatureEntry, encode_signatures, manifest_message
from fieldkit.bundles.truststore import (
    Scope,
    TrustedKey,
    TrustedRoot,
    TrustStoreBody,
    build_store,
    trusted_key_entry,
)
from fieldkit.bundles.verify import ChargerFacts, VerificationReport, verify_bundle
from fieldkit.config import Limits, Settings

NOW: Final = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
CREATED: Final = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# Far ahead: tests that verify with the real clock must not start failing on a calendar date.
EXPIRES: Final = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(
    cn: str,
    key: Any,
    not_before: dt.datetime = dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    not_after: dt.datetime = dt.datetime(2040, 1, 1, tzinfo=dt.UTC),
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_leaf(
    cn: str,
    key: Any,
    issuer: x509.Certificate,
    issuer_key: Any,
    *,
    code_signing: bool = True,
    not_before: dt.datetime = dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    not_after: dt.datetime = dt.datetime(2039, 1, 1, tzinfo=dt.UTC),
) -> x509.Certificate:
    eku = [ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.SERVER_AUTH]
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class BundleLab:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = ed25519.Ed25519PrivateKey.generate()
        self.root2 = ed25519.Ed25519PrivateKey.generate()
        self.release = ed25519.Ed25519PrivateKey.generate()
        self.release_ec = ec.generate_private_key(ec.SECP256R1())
        self.release2 = ed25519.Ed25519PrivateKey.generate()
        self.metrology = ed25519.Ed25519PrivateKey.generate()
        self.ampero_only = ed25519.Ed25519PrivateKey.generate()
        self.expired = ed25519.Ed25519PrivateKey.generate()
        self.future = ed25519.Ed25519PrivateKey.generate()
        self.revoked = ed25519.Ed25519PrivateKey.generate()
        self.unknown = ed25519.Ed25519PrivateKey.generate()
        self.dispatch = ed25519.Ed25519PrivateKey.generate()
        # X.509: a pinned OEM CA and leaves, an unpinned CA, an OCPP manufacturer root.
        self.oem_ca_key = ec.generate_private_key(ec.SECP256R1())
        self.oem_ca = make_ca("OEM root", self.oem_ca_key)
        self.oem_leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.oem_leaf = make_leaf("OEM signer", self.oem_leaf_key, self.oem_ca, self.oem_ca_key)
        self.oem_tls_key = ec.generate_private_key(ec.SECP256R1())
        self.oem_tls_leaf = make_leaf("OEM TLS", self.oem_tls_key, self.oem_ca, self.oem_ca_key, code_signing=False)
        self.oem_old_key = ec.generate_private_key(ec.SECP256R1())
        self.oem_old_leaf = make_leaf(
            "OEM 2021 signer",
            self.oem_old_key,
            self.oem_ca,
            self.oem_ca_key,
            not_before=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
            not_after=dt.datetime(2022, 1, 1, tzinfo=dt.UTC),
        )
        self.rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
        self.rogue_ca = make_ca("Rogue root", self.rogue_ca_key)
        self.rogue_leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.rogue_leaf = make_leaf("Rogue signer", self.rogue_leaf_key, self.rogue_ca, self.rogue_ca_key)
        self.ocpp_ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ocpp_ca = make_ca("Manufacturer root", self.ocpp_ca_key)
        self.ocpp_leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.ocpp_leaf = make_leaf("Firmware signer", self.ocpp_leaf_key, self.ocpp_ca, self.ocpp_ca_key)
        self.ocpp_rsa_key = rsa.generate_private_key(65537, 2048)
        self.ocpp_rsa_leaf = make_leaf("Firmware signer RSA", self.ocpp_rsa_key, self.ocpp_ca, self.ocpp_ca_key)
        self.store_body = self._store_body()
        self.store_path = self.dir / "trust-store.json"
        self.store_path.write_bytes(build_store(self.store_body, [self.root]))
        self.settings = Settings()
        self.limits: Limits = self.settings.limits
        self._counter = 0

    def trusted(self, key: Any, name: str, roles: list[Any], scope: Scope | None = None, **window: Any) -> TrustedKey:
        return trusted_key_entry(key.public_key(), name, roles, scope, **window)

    def _store_body(self, **overrides: Any) -> TrustStoreBody:
        fields: dict[str, Any] = {
            "type": "fieldkit-trust-store",
            "schema_version": 1,
            "version": 1,
            "issued_at": CREATED,
            "keys": [
                self.trusted(self.root, "root", ["trust-root"]),
                self.trusted(self.release, "release", ["release"], Scope(vendors=["Voltiq", "Ampero"])),
                self.trusted(self.release_ec, "release-ec", ["release"]),
                self.trusted(self.release2, "release-2", ["release"]),
                self.trusted(self.metrology, "metrology", ["metrology"]),
                self.trusted(self.ampero_only, "ampero-only", ["release"], Scope(vendors=["Ampero"])),
                self.trusted(
                    self.expired,
                    "expired",
                    ["release"],
                    not_after=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                ),
                self.trusted(
                    self.future,
                    "future",
                    ["release"],
                    not_before=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                ),
                self.trusted(self.revoked, "revoked", ["release"]),
                self.trusted(self.dispatch, "dispatch", ["dispatch"], Scope(vendors=["Voltiq"])),
            ],
            "x509_roots": [
                TrustedRoot(
                    key_id=keys.certificate_key_id(self.oem_ca),
                    name="OEM root",
                    certificate_pem=pem(self.oem_ca),
                    roles=["release"],
                ),
                TrustedRoot(
                    key_id=keys.certificate_key_id(self.ocpp_ca),
                    name="Manufacturer root",
                    certificate_pem=pem(self.ocpp_ca),
                    roles=["ocpp-manufacturer"],
                ),
            ],
            "thresholds": {"trust-root": 1, "release": 1, "metrology": 1},
            "revoked_key_ids": [keys.key_id(self.revoked.public_key())],
        }
        fields.update(overrides)
        return TrustStoreBody(**fields)

    def store_with(self, **overrides: Any) -> TrustStoreBody:
        return self._store_body(**overrides)

    # -- manifests and bundles ------------------------------------------------

    def manifest(self, payloads: dict[str, bytes], **overrides: Any) -> dict[str, Any]:
        components = []
        for order, (name, data) in enumerate(payloads.items()):
            components.append(
                {
                    "name": name,
                    "target": name,
                    "install_method": "rauc",
                    "payload": f"payloads/{name}",
                    "size_bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "version": "2.5.0",
                    "metrology_relevant": False,
                    "order": order,
                }
            )
        document: dict[str, Any] = {
            "schema": "fieldkit-bundle",
            "schema_version": 1,
            "bundle_id": "test-bundle",
            "vendor": "Voltiq",
            "version": "2.5.0",
            "security_version": 5,
            "created_at": iso(CREATED),
            "expires_at": iso(EXPIRES),
            "compatibility": [
                {
                    "model": "VQ-AC22",
                    "hardware_revisions": ["B", "C"],
                    "min_installed_version": "2.0.0",
                }
            ],
            "release_notes": "# 2.5.0\n",
            "components": components,
        }
        document.update(overrides)
        return document

    def signature(self, key: Any, manifest_bytes: bytes, chain: list[x509.Certificate] | None = None) -> SignatureEntry:
        public = key.public_key()
        return SignatureEntry(
            key_id=keys.key_id(public),
            algorithm=keys.algorithm_of(public),
            signature=base64.b64encode(keys.sign(key, manifest_message(manifest_bytes))).decode("ascii"),
            certificate_chain=[pem(c) for c in chain] if chain else None,
        )

    def bundle(
        self,
        payloads: dict[str, bytes] | None = None,
        manifest: dict[str, Any] | None = None,
        manifest_bytes: bytes | None = None,
        signers: list[Any] | None = None,
        chains: dict[int, list[x509.Certificate]] | None = None,
        name: str | None = None,
        **overrides: Any,
    ) -> Path:
        payloads = payloads if payloads is not None else {"rootfs": b"ROOTFS" * 1000}
        document = manifest if manifest is not None else self.manifest(payloads, **overrides)
        raw = manifest_bytes if manifest_bytes is not None else json.dumps(document, indent=2).encode()
        signers = [self.release] if signers is None else signers
        chains = chains or {}
        entries = [self.signature(k, raw, chains.get(i)) for i, k in enumerate(signers)]
        self._counter += 1
        path = self.dir / (name or f"bundle-{self._counter}.fwbundle")
        sources = []
        for payload_name, data in payloads.items():
            source = self.dir / f"payload-{self._counter}-{payload_name}"
            source.write_bytes(data)
            sources.append(PayloadSource(f"payloads/{payload_name}", source))
        write_container(path, raw, sources, encode_signatures(entries))
        return path

    def verify(
        self,
        path: Path,
        facts: ChargerFacts | None = None,
        store: TrustStoreBody | None = None,
        now: dt.datetime = NOW,
        settings: Settings | None = None,
    ) -> VerificationReport:
        return verify_bundle(
            path,
            store or self.store_body,
            TrustedState.in_memory(now),
            settings or self.settings,
            facts,
        )

    def ocpp_block(self, data: bytes, key: Any = None, cert: x509.Certificate | None = None) -> dict[str, str]:
        key = key or self.ocpp_leaf_key
        cert = cert or self.ocpp_leaf
        digest = hashlib.sha256(data).digest()
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(
                digest,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                utils.Prehashed(hashes.SHA256()),
            )
        else:
            signature = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return {"signature": base64.b64encode(signature).decode(), "signing_certificate": pem(cert)}


def with_components(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``document`` whose first component has ``changes`` applied."""
    copied = copy.deepcopy(document)
    copied["components"][0].update(changes)
    return copied
