"""Real SWUpdate images (.swu) for the rig: sw-description for two copies, CMS-signed, in a cpio archive."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from tests.support.raucbundle import RaucSigner


def _cpio_entry(name: str, data: bytes, mode: int = 0o100644) -> bytes:
    """One member in the "crc" cpio format (070702) SWUpdate reads: the checksum is the sum of the data bytes."""
    name_bytes = name.encode() + b"\0"
    checksum = sum(data) & 0xFFFFFFFF
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_bytes), checksum]
    header = b"070702" + b"".join(f"{value:08X}".encode() for value in fields)
    out = header + name_bytes
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def sw_description(version: str, hardware_revision: str, image_sha256: str, slot_devices: dict[str, str]) -> str:
    copies = "\n".join(
        f"""        copy{slot}: {{
            images: ( {{ filename = "rootfs.img"; device = "{device}"; type = "raw"; sha256 = "{image_sha256}"; }} );
            bootenv: ( {{ name = "rootpart"; value = "{slot}"; }}, {{ name = "upgrade_available"; value = "1"; }},
                       {{ name = "bootcount"; value = "0"; }} );
        }};"""
        for slot, device in slot_devices.items()
    )
    return f"""software =
{{
    version = "{version}";
    hardware-compatibility = [ "{hardware_revision}" ];
    stable: {{
{copies}
    }};
}}
"""


def build_swu(
    directory: Path,
    image: bytes,
    version: str,
    hardware_revision: str,
    slot_devices: dict[str, str],
    signer: RaucSigner,
) -> Path:
    """A signed .swu installing ``image`` into whichever copy ``-e stable,copyX`` selects."""
    directory.mkdir(parents=True, exist_ok=True)
    description = sw_description(version, hardware_revision, hashlib.sha256(image).hexdigest(), slot_devices).encode()
    cert = x509.load_pem_x509_certificate(signer.cert.read_bytes())
    key = serialization.load_pem_private_key(signer.key.read_bytes(), None)
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(description)
        .add_signer(cert, key, hashes.SHA256())  # type: ignore[arg-type]
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCapabilities],
        )
    )
    archive = (
        _cpio_entry("sw-description", description)
        + _cpio_entry("sw-description.sig", signature)
        + _cpio_entry("rootfs.img", image)
        + _cpio_entry("TRAILER!!!", b"", 0)
    )
    out = directory / f"rootfs-{version}-{hardware_revision}.swu"
    out.write_bytes(archive + b"\0" * (-len(archive) % 512))
    return out
