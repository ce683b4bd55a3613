"""MCUboot images as an MCU charger's bootloader sees them: header, body, TLV trailer.

Layout (MCUboot's image format): a little-endian header (magic 0x96f3b83d,
load address, header size, protected-TLV size, body size, flags, version
major.minor.revision+build), the body starting at the header size, then an
optional protected TLV area (magic 0x6908) and the TLV area (magic 0x6907).
The image hash TLV (SHA-256, type 0x10) covers header, body and protected
TLVs; it is the hash an SMP server reports for the slot and the one
``image state`` takes to test an image.

fieldkit reads an image from its bundle before anything is sent to a
board: a payload whose header, sizes or hash TLV do not hold, or whose
version is not the bundle's, is refused on the laptop. Reads are bounded by
the payload's own size; nothing is trusted from the file that is not
checked against it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

from fieldkit.errors import FieldkitError

IMAGE_MAGIC: Final = 0x96F3B83D
HEADER: Final = struct.Struct("<IIHHII BBHI 4x")  # magic, load, hdr_size, prot_size, img_size, flags, version
TLV_INFO: Final = struct.Struct("<HH")  # magic, total size (this info header included)
TLV_ENTRY: Final = struct.Struct("<BxH")  # type, (pad), length
TLV_INFO_MAGIC: Final = 0x6907
TLV_PROTECTED_MAGIC: Final = 0x6908
TLV_SHA256: Final = 0x10
MAX_TLV_AREA_BYTES: Final = 64 * 1024  # signatures and certificates fit in far less
READ_CHUNK_BYTES: Final = 256 * 1024


class McubootImageError(FieldkitError):
    """A payload that is not a well-formed MCUboot image."""

    exit_code = 13
    default_hint = "the bundle's payload for this component is not an MCUboot image a board would accept"


@dataclass(frozen=True)
class McubootImage:
    header_bytes: int
    body_bytes: int
    protected_tlv_bytes: int
    total_bytes: int  # header, body and both TLV areas: the whole file
    version: str  # "major.minor.revision" (the build number follows in build)
    build: int
    image_hash: bytes  # the SHA-256 TLV, checked against the image

    def matches_version(self, version: str) -> bool:
        """Is this the bundle's ``version``? "1.4.0" matches any build; "1.4.0+7" only build 7."""
        base, _, build = version.partition("+")
        parts = base.split(".")
        while len(parts) < 3:
            parts.append("0")
        if ".".join(str(int(p)) if p.isdigit() else p for p in parts[:3]) != self.version:
            return False
        return not build or (build.isdigit() and int(build) == self.build)


def read_mcuboot_image(source: BinaryIO, size_bytes: int) -> McubootImage:
    """Parse and check the MCUboot image of ``size_bytes`` at ``source``'s position (which it consumes)."""
    raw = source.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise McubootImageError(f"the payload ({size_bytes} bytes) is too short for an MCUboot header")
    magic, _load, hdr_size, prot_size, img_size, _flags, major, minor, revision, build = HEADER.unpack(raw)
    if magic != IMAGE_MAGIC:
        raise McubootImageError(f"the payload has no MCUboot header (magic {magic:#010x}, not {IMAGE_MAGIC:#010x})")
    hashed_end = hdr_size + img_size + prot_size
    if hdr_size < HEADER.size or hashed_end + TLV_INFO.size > size_bytes:
        raise McubootImageError(
            f"the MCUboot header's sizes (header {hdr_size}, body {img_size}, protected TLVs {prot_size}) "
            f"do not fit the {size_bytes}-byte payload"
        )
    digest = hashlib.sha256(raw)
    position = len(raw)
    protected = b""
    while position < hashed_end:
        chunk = source.read(min(READ_CHUNK_BYTES, hashed_end - position))
        if not chunk:
            raise McubootImageError("the payload ended inside the MCUboot image body")
        if position + len(chunk) > hdr_size + img_size:  # keep the protected TLVs to check their area
            protected += chunk[max(0, hdr_size + img_size - position) :]
        digest.update(chunk)
        position += len(chunk)
    if prot_size:
        _check_area(protected, TLV_PROTECTED_MAGIC, prot_size)
    info = source.read(TLV_INFO.size)
    tlv_magic, tlv_total = TLV_INFO.unpack(info) if len(info) == TLV_INFO.size else (0, 0)
    if tlv_magic != TLV_INFO_MAGIC or tlv_total > MAX_TLV_AREA_BYTES or hashed_end + tlv_total != size_bytes:
        raise McubootImageError(
            f"the MCUboot TLV area is missing or does not end the payload (magic {tlv_magic:#06x}, "
            f"{tlv_total} bytes after byte {hashed_end} of {size_bytes})"
        )
    area = info + source.read(tlv_total - TLV_INFO.size)
    entries = _check_area(area, TLV_INFO_MAGIC, tlv_total)
    stated = entries.get(TLV_SHA256)
    if stated is None:
        raise McubootImageError("the MCUboot image has no SHA-256 TLV (type 0x10): a board could not check it")
    if not hmac.compare_digest(stated, digest.digest()):
        raise McubootImageError("the MCUboot image's SHA-256 TLV does not match its header and body")
    return McubootImage(hdr_size, img_size, prot_size, size_bytes, f"{major}.{minor}.{revision}", build, stated)


def _check_area(area: bytes, magic: int, size: int) -> dict[int, bytes]:
    """The entries of one TLV area (type -> value, the first of each type), checked to fill it exactly."""
    if len(area) != size or size < TLV_INFO.size or TLV_INFO.unpack_from(area)[0] != magic:
        raise McubootImageError(f"an MCUboot TLV area (magic {magic:#06x}) is malformed")
    if TLV_INFO.unpack_from(area)[1] != size:
        raise McubootImageError(f"an MCUboot TLV area (magic {magic:#06x}) states a size it does not have")
    entries: dict[int, bytes] = {}
    offset = TLV_INFO.size
    while offset < size:
        if offset + TLV_ENTRY.size > size:
            raise McubootImageError("an MCUboot TLV entry runs past its area")
        kind, length = TLV_ENTRY.unpack_from(area, offset)
        offset += TLV_ENTRY.size
        if offset + length > size:
            raise McubootImageError(f"MCUboot TLV {kind:#04x} runs past its area")
        entries.setdefault(kind, area[offset : offset + length])
        offset += length
    return entries
