"""OCPP signed firmware: check the OEM signature a charger will itself check.

OCPP 2.0.1 (SignedUpdateFirmware) and the OCPP 1.6 security extension send a
charger the firmware, a signing certificate and a base64 signature over the
firmware file. The charger checks that certificate against its
ManufacturerRootCertificate and the signature over the file; fieldkit does the
same before transfer, against the manufacturer roots pinned in the trust store
(role ``ocpp-manufacturer``), so a charger never receives what it would reject.

Accepted signatures: RSA-PSS with SHA-256 (MGF1-SHA-256, any salt length) and
ECDSA with SHA-256. The payload digest is computed once, while streaming.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from fieldkit.bundles import keys
from fieldkit.bundles.manifest import OcppSignature
from fieldkit.bundles.truststore import TrustStoreBody


def ocpp_signature_problem(
    ocpp: OcppSignature,
    payload_sha256: bytes,
    store: TrustStoreBody,
    now: dt.datetime,
    max_chain: int,
) -> tuple[str, str] | None:
    """None if valid; otherwise (code, explanation)."""
    from cryptography.x509.verification import (
        ExtensionPolicy,
        PolicyBuilder,
        Store,
        VerificationError,
    )

    try:
        chain = x509.load_pem_x509_certificates(ocpp.signing_certificate.encode("ascii"))
    except ValueError:
        return "ocpp-certificate-malformed", "the OCPP signing certificate is not PEM"
    if not chain or len(chain) > max_chain:
        return (
            "ocpp-certificate-malformed",
            "the OCPP signing certificate chain is empty or too long",
        )
    roots = [
        x509.load_pem_x509_certificate(r.certificate_pem.encode("ascii"))
        for r in store.x509_roots
        if "ocpp-manufacturer" in r.roles
    ]
    if not roots:
        return "ocpp-root-missing", "no manufacturer root is pinned in the trust store"
    try:
        verified = (
            PolicyBuilder()
            .store(Store(roots))
            .time(now)
            .max_chain_depth(max_chain)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
            .verify(chain[0], chain[1:])
            .chain
        )
    except VerificationError as exc:
        return (
            "ocpp-certificate-untrusted",
            f"the OCPP signing certificate does not chain to a pinned manufacturer root ({exc})",
        )
    for cert in verified:
        if store.is_revoked(keys.certificate_key_id(cert)):
            return "ocpp-certificate-revoked", "a certificate of the OCPP signing chain is revoked"
    try:
        signature = base64.b64decode(ocpp.signature, validate=True)
    except (binascii.Error, ValueError):
        return "ocpp-signature-malformed", "the OCPP signature is not base64"
    public_key = chain[0].public_key()
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(
                signature,
                payload_sha256,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
                prehashed,
            )
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, payload_sha256, ec.ECDSA(prehashed))
        else:
            return "ocpp-signature-algorithm", "the OCPP signing key is neither RSA nor ECDSA"
    except InvalidSignature:
        return "ocpp-signature-mismatch", "the OCPP signature does not match the firmware file"
    return None
