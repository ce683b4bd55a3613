"""Real RAUC bundles for the rig: a signing CA, and `rauc bundle` over a rootfs image."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class RaucSigner:
    ca_pem: bytes  # what the charger's keyring holds
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_signer(directory: Path, organisation: str) -> RaucSigner:
    """A CA (the charger maker's keyring) and a development signing certificate under it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organisation} update CA"))
        .issuer_name(_name(f"{organisation} update CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organisation} release signing"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "signer.cert.pem", directory / "signer.key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return RaucSigner(ca.public_bytes(serialization.Encoding.PEM), cert_path, key_path)


def build_rauc_bundle(
    directory: Path, image: bytes, version: str, compatible: str, signer: RaucSigner, name: str = "rootfs"
) -> Path:
    """``rauc bundle`` of one rootfs image; returns the .raucb path."""
    content = directory / f"{name}-{version}-content"
    content.mkdir(parents=True)
    (content / "rootfs.img").write_bytes(image)
    (content / "manifest.raucm").write_text(
        f"[update]\ncompatible={compatible}\nversion={version}\n\n[image.rootfs]\nfilename=rootfs.img\n"
    )
    out = directory / f"{name}-{version}.raucb"
    subprocess.run(
        ["rauc", "bundle", f"--cert={signer.cert}", f"--key={signer.key}", str(content), str(out)],
        check=True,
        capture_output=True,
    )
    return out
