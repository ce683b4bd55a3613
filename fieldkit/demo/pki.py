"""The demo's PKI: deterministic demo keys, an X.509 chain for OCPP-style signing, and the demo trust store.

Everything is derived from fixed seeds and fixed dates, so it is the same
bytes every time (Ed25519 and RFC 6979 ECDSA are deterministic). The keys are
demo keys (see bundles/demo_keys.py): the trust store written here is marked
``demo`` and no other store accepts them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fieldkit.bundles import keys
from fieldkit.bundles.demo_keys import DEMO_KEY_NAMES, demo_private_key
from fieldkit.bundles.roles import ROLES
from fieldkit.bundles.truststore import Scope, TrustedKey, TrustedRoot, TrustStoreBody, build_store
from fieldkit.simulator.catalog import MODELS

CREATED: Final = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
CERT_FROM: Final = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
CERT_UNTIL: Final = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fieldkit DEMO (never trust)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_cert(key: ec.EllipticCurvePrivateKey, common_name: str, serial: int) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(CERT_FROM)
        .not_valid_after(CERT_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    )


def _signing_cert(
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    serial: int,
) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(CERT_FROM)
        .not_valid_after(CERT_UNTIL)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
    )


def demo_ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    key = demo_private_key(name)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


class DemoPki:
    """The demo's keys and certificates, all derived on demand."""

    def __init__(self) -> None:
        self.oem_root = _ca_cert(demo_ec_key("demo-oem-root-ca"), "Ampero DEMO OEM root", 1)
        self.oem_signing = _signing_cert(
            demo_ec_key("demo-oem-signing"),
            "Ampero DEMO release signing",
            self.oem_root,
            demo_ec_key("demo-oem-root-ca"),
            2,
        )
        self.ocpp_root = _ca_cert(demo_ec_key("demo-ocpp-root-ca"), "Ampero DEMO ManufacturerRootCertificate", 3)
        self.ocpp_signing = _signing_cert(
            demo_ec_key("demo-ocpp-signing"),
            "Ampero DEMO firmware signing",
            self.ocpp_root,
            demo_ec_key("demo-ocpp-root-ca"),
            4,
        )

    @staticmethod
    def pem(cert: x509.Certificate) -> str:
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def trust_store_bytes(self) -> bytes:
        def pinned(name: str, roles: list[Any], scope: Scope) -> TrustedKey:
            public = demo_private_key(name).public_key()
            return TrustedKey(
                key_id=keys.key_id(public),
                name=f"{name} (DEMO)",
                algorithm=keys.algorithm_of(public),
                public_key_pem=keys.plain_public_pem(public),
                roles=roles,
                scope=scope,
            )

        def root(cert: x509.Certificate, name: str, roles: list[Any], scope: Scope) -> TrustedRoot:
            return TrustedRoot(
                key_id=keys.certificate_key_id(cert),
                name=name,
                certificate_pem=self.pem(cert),
                roles=roles,
                scope=scope,
            )

        vendors = sorted({m.vendor for m in MODELS})
        body = TrustStoreBody(
            type="fieldkit-trust-store",
            schema_version=1,
            version=1,
            issued_at=CREATED,
            demo=True,
            keys=[
                pinned("demo-trust-root", ["trust-root"], Scope()),
                pinned("demo-release", ["release"], Scope(vendors=vendors)),
                pinned("demo-metrology", ["metrology"], Scope(vendors=vendors)),
            ],
            x509_roots=[
                root(self.oem_root, "Ampero DEMO OEM root", ["release"], Scope(vendors=["Ampero"])),
                root(
                    self.ocpp_root,
                    "Ampero DEMO ManufacturerRootCertificate",
                    ["ocpp-manufacturer"],
                    Scope(),
                ),
            ],
            thresholds={"trust-root": 1, "release": 1, "metrology": 1},
        )
        return build_store(body, [demo_private_key("demo-trust-root")])


def write_demo_keys(directory: Path, pki: DemoPki) -> None:
    for name in DEMO_KEY_NAMES:
        private = demo_private_key(name)
        meta = keys.KeyMeta(name=name, role=_role_of(name), label="demo")
        private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_file(directory / f"{name}.key", b"fieldkit-key-label: demo\n" + private_pem)
        (directory / f"{name}.key").chmod(0o600)
        write_file(directory / f"{name}.pub", keys.public_pem(private.public_key(), meta))
    for cert, name in (
        (pki.oem_root, "demo-oem-root-ca"),
        (pki.oem_signing, "demo-oem-signing"),
        (pki.ocpp_root, "demo-ocpp-root-ca"),
        (pki.ocpp_signing, "demo-ocpp-signing"),
    ):
        write_file(directory / f"{name}.crt", pki.pem(cert).encode("ascii"))


def _role_of(name: str) -> str:
    for role in ROLES:
        if role in name:
            return role
    return "x509"


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
