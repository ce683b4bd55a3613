"""Real Mender Artifacts for the rig: `mender-artifact write rootfs-image`, signed with the maker's key."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tests.support.raucbundle import RaucSigner


def verify_key_pem(signer: RaucSigner) -> bytes:
    """The public key a Mender client checks Artifacts against (its ``ArtifactVerifyKey``)."""
    private = serialization.load_pem_private_key(signer.key.read_bytes(), password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def build_mender_artifact(directory: Path, image: bytes, version: str, device_type: str, signer: RaucSigner) -> Path:
    """A rootfs-image Artifact named after ``version``, for ``device_type``, signed by ``signer``'s key."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rootfs.img").write_bytes(image)
    # mender-artifact reads an EC key only in OpenSSL's traditional ("EC PRIVATE KEY") form.
    private = serialization.load_pem_private_key(signer.key.read_bytes(), password=None)
    key = directory / "signing-key.pem"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    out = directory / f"rootfs-{version}.mender"
    subprocess.run(
        ["mender-artifact", "write", "rootfs-image", "--no-progress", "--compression", "none",
         "-n", version, "-t", device_type, "-f", str(directory / "rootfs.img"), "-k", str(key),
         "-o", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out
