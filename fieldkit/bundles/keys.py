"""Signing keys: generation, files, identifiers, signatures.

Key ids are the lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo,
so the same key has the same id in every tool. Supported algorithms:

- ``ed25519``: Ed25519 (RFC 8032), the default;
- ``ecdsa-p256-sha256``: ECDSA on P-256 with SHA-256, DER-encoded signatures.

Key files are PEM. A few ``fieldkit-key-*: value`` lines before the PEM block
record name, role and label; PEM readers ignore text outside the block.
Private keys are encrypted with a passphrase unless asked otherwise, and are
written readable by their owner only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from fieldkit.errors import KeyFileError, UsageError
from fieldkit.fsutil import read_regular_file

Algorithm = Literal["ed25519", "ecdsa-p256-sha256"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("ed25519", "ecdsa-p256-sha256")

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

_META_PREFIX: Final = "fieldkit-key-"
P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MAX_KEY_FILE_BYTES: Final = 64 * 1024  # a PEM key with its metadata is under 2 KiB


def spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(public_key: PublicKey) -> str:
    """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def certificate_key_id(certificate: x509.Certificate) -> str:
    """Key id of any certificate's public key, whatever its algorithm."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def algorithm_of(public_key: object) -> Algorithm:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        return "ecdsa-p256-sha256"
    raise UsageError(
        f"unsupported key type {type(public_key).__name__}",
        "use an Ed25519 or ECDSA P-256 key",
    )


def as_public_key(obj: object) -> PublicKey:
    """Narrow a loaded key to a supported public key type, or refuse it."""
    algorithm_of(obj)
    assert isinstance(obj, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return obj


def generate(algorithm: Algorithm = "ed25519") -> PrivateKey:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def sign(private_key: PrivateKey, message: bytes) -> bytes:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(message)
    # Deterministic ECDSA (RFC 6979): no dependence on a good RNG at signing
    # time, and the same input signs to the same bytes (reproducible demos).
    der = private_key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return encode_dss_signature(r, min(s, P256_ORDER - s))  # low-S, the one form verify accepts


def _canonical_ecdsa(signature: bytes) -> bool:
    """Strict DER with a low S: (r, s) and (r, n - s) both verify, so only one of them is allowed,
    and only its one DER encoding: a release then has exactly one valid signature encoding."""
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    return 0 < s <= P256_ORDER // 2 and encode_dss_signature(r, s) == signature


def verify(public_key: PublicKey, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` is valid for ``message`` under ``public_key``."""
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, message)
        else:
            if not _canonical_ecdsa(signature):
                return False
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class KeyMeta:
    """What the header lines of a key file say about it."""

    name: str = ""
    role: str = ""
    label: str = ""


def _meta_lines(meta: KeyMeta, kid: str) -> bytes:
    lines = [f"{_META_PREFIX}id: {kid}"]
    for field, value in (("name", meta.name), ("role", meta.role), ("label", meta.label)):
        if value:
            lines.append(f"{_META_PREFIX}{field}: {value}")
    return ("\n".join(lines) + "\n").encode("ascii")


def _read_meta(text: bytes) -> KeyMeta:
    values: dict[str, str] = {}
    for line in text.decode("ascii", "replace").splitlines():
        if line.startswith("-----BEGIN"):
            break
        if line.startswith(_META_PREFIX) and ":" in line:
            field, _, value = line[len(_META_PREFIX) :].partition(":")
            values[field.strip()] = value.strip()
    return KeyMeta(values.get("name", ""), values.get("role", ""), values.get("label", ""))


def plain_public_pem(public_key: PublicKey) -> str:
    """The bare PEM block, as stored inside trust stores."""
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(
        "ascii"
    )


def public_pem(public_key: PublicKey, meta: KeyMeta = KeyMeta()) -> bytes:
    """A .pub file: header lines naming the key, then the PEM block."""
    return _meta_lines(meta, key_id(public_key)) + plain_public_pem(public_key).encode("ascii")


def write_key_pair(
    directory: Path, name: str, private_key: PrivateKey, meta: KeyMeta, passphrase: bytes | None
) -> tuple[Path, Path]:
    """Write DIR/NAME.key (owner-only) and DIR/NAME.pub; refuse to overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (key_path, pub_path):
        if path.exists():
            raise UsageError(f"{path} already exists", "choose another --name or move the old key away")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    private_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_key = private_key.public_key()
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(_meta_lines(meta, key_id(public_key)) + private_pem)
    pub_path.write_bytes(public_pem(public_key, meta))
    return key_path, pub_path


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return read_regular_file(path, MAX_KEY_FILE_BYTES)
    except UsageError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.message}", "check the path") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror}", "check the path") from exc


def load_public_key(path: Path) -> tuple[PublicKey, KeyMeta]:
    data = _read_key_file(path, "public key")
    try:
        loaded = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(
            f"{path} is not a PEM public key",
            "pass the .pub file written by `fieldkit keys generate`",
        ) from exc
    return as_public_key(loaded), _read_meta(data)


def is_encrypted(path: Path) -> bool:
    return b"ENCRYPTED PRIVATE KEY" in _read_key_file(path, "key")


def load_private_key(path: Path, passphrase: bytes | None) -> tuple[PrivateKey, KeyMeta]:
    data = _read_key_file(path, "key")
    try:
        loaded = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:
        raise KeyFileError(
            f"{path} is encrypted" if not passphrase else f"{path} is not encrypted but a passphrase was given",
            "give its passphrase with --passphrase-file" if not passphrase else "drop --passphrase-file",
        ) from exc
    except ValueError as exc:
        raise KeyFileError(
            f"cannot load private key {path}: wrong passphrase or not a PEM private key",
            "check the passphrase file and that this is the .key written by `fieldkit keys generate`",
        ) from exc
    if not isinstance(loaded, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{path} holds an unsupported key type", "use an Ed25519 or ECDSA P-256 key")
    algorithm_of(loaded.public_key())
    return loaded, _read_meta(data)


def read_passphrase_file(path: Path) -> bytes:
    """A passphrase file holds the passphrase on its first line."""
    text = _read_key_file(path, "passphrase file")
    passphrase = text.splitlines()[0] if text else b""
    if not passphrase:
        raise KeyFileError(f"passphrase file {path} is empty", "write the passphrase on its first line")
    return passphrase
