"""Hand-made ZIP files for attack cases: every field the canonical writer fixes, overridable."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass


@dataclass
class RawEntry:
    name: str
    data: bytes
    method: int = 0
    flags: int = 0
    external_attr: int = 0
    declared_size: int | None = None  # lie about the uncompressed size
    crc: int | None = None
    offset_override: int | None = None  # point the directory entry somewhere else


def craft_zip(entries: list[RawEntry], trailer: bytes = b"", prefix: bytes = b"") -> bytes:
    out = bytearray(prefix)
    directory = bytearray()
    for entry in entries:
        name = entry.name.encode("utf-8")
        stored = entry.data
        if entry.method == 8:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            stored = compressor.compress(entry.data) + compressor.flush()
        crc = entry.crc if entry.crc is not None else zlib.crc32(entry.data)
        usize = entry.declared_size if entry.declared_size is not None else len(entry.data)
        offset = len(out) if entry.offset_override is None else entry.offset_override
        local = (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                10,
                entry.flags,
                entry.method,
                0,
                33,
                crc,
                len(stored),
                usize,
                len(name),
                0,
            )
            + name
        )
        if entry.offset_override is None:
            out += local + stored
        directory += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                10,
                10,
                entry.flags,
                entry.method,
                0,
                33,
                crc,
                len(stored),
                usize,
                len(name),
                0,
                0,
                0,
                0,
                entry.external_attr,
                offset,
            )
            + name
        )
    cd_offset = len(out)
    out += directory
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), cd_offset, 0)
    return bytes(out) + trailer
