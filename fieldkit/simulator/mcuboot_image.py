"""MCUboot images for simulated MCU boards: the simulator's image header inside an MCUboot body.

What ``imgtool create --header-size 0x200 --pad-header`` writes for an
unsigned image: a 32-byte header padded to 0x200, the body, and a TLV area
with the SHA-256 image hash. The body starts with the simulator's own image
header line (image.py), so the simulated board checks model and component
as it does for every image, and a real MCUmgr client (smpmgr) accepts it.
"""

from __future__ import annotations

import hashlib
from typing import Final

from fieldkit.drivers.mcuboot import HEADER, IMAGE_MAGIC, TLV_ENTRY, TLV_INFO, TLV_INFO_MAGIC, TLV_SHA256

HEADER_BYTES: Final = 0x200  # imgtool's usual --header-size
LOAD_ADDRESS: Final = 0


def mcuboot_image(body: bytes, version: str) -> bytes:
    """An unsigned MCUboot image of ``body`` at ``version`` ("major.minor.revision[+build]")."""
    base, _, build = version.partition("+")
    numbers = [int(part) for part in base.split(".")] + [0, 0, 0]
    major, minor, revision = numbers[:3]
    header = HEADER.pack(
        IMAGE_MAGIC, LOAD_ADDRESS, HEADER_BYTES, 0, len(body), 0, major, minor, revision, int(build or 0)
    )
    hashed = header + b"\xff" * (HEADER_BYTES - len(header)) + body  # padded as erased flash, as imgtool does
    entry = TLV_ENTRY.pack(TLV_SHA256, 32) + hashlib.sha256(hashed).digest()
    return hashed + TLV_INFO.pack(TLV_INFO_MAGIC, TLV_INFO.size + len(entry)) + entry


def mcuboot_body_offset(image: bytes) -> int | None:
    """Where an MCUboot image's body starts (its header size), or None when ``image`` is not one."""
    if len(image) < HEADER.size:
        return None
    fields = HEADER.unpack_from(image)
    return int(fields[2]) if fields[0] == IMAGE_MAGIC else None
