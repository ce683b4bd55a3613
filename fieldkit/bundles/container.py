"""The bundle container: a canonical, stored-only ZIP file.

A bundle is an ordinary ZIP archive that any unzip tool can list, but fieldkit
accepts exactly one encoding of it (offline_bundles/README.md, "Container"):
members stored uncompressed, fixed header fields, no extra fields, comments or
data descriptors, members back to back from offset 0, the central directory
right after them and the end record last. Every byte of a valid bundle is
therefore either authenticated (manifest, payload bytes), derived from
authenticated data (sizes, CRCs, offsets), or fixed by this module: a bundle
that differs from a valid one in any byte is refused.

``zipfile`` is not used to read bundles because it is deliberately lenient
(prepended data, overlapping members, data descriptors, platform-dependent
header fields), and leniency is where hidden bytes live. The reader never
extracts anything to disk; payloads are streamed by offset.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from fieldkit.config import Limits
from fieldkit.errors import BundleRejectedError, UsageError
from fieldkit.fsutil import atomic_output, open_regular_file

MANIFEST_NAME: Final = "manifest.json"
SIGNATURES_NAME: Final = "signatures.json"
PAYLOAD_PREFIX: Final = "payloads/"
PAYLOAD_NAME_RE: Final = re.compile(r"payloads/[A-Za-z0-9][A-Za-z0-9._-]{0,118}")

_LOCAL_SIG: Final = 0x04034B50
_CENTRAL_SIG: Final = 0x02014B50
_END_SIG: Final = 0x06054B50
_LOCAL: Final = struct.Struct("<IHHHHHIIIHH")
_CENTRAL: Final = struct.Struct("<IHHHHHHIIIHHHHHII")
_END: Final = struct.Struct("<IHHHHIIH")
# Fixed header values: "version 1.0, MS-DOS", no flags, method 0 (stored),
# time 00:00:00, date 1980-01-01 (the earliest DOS date). Timestamps belong
# in the signed manifest, not in unauthenticated headers.
_VERSION: Final = 10
_DOS_DATE: Final = (0 << 9) | (1 << 5) | 1
_UINT32_MAX: Final = 0xFFFF_FFFF
_S_IFMT: Final = 0o170000
_S_IFLNK: Final = 0o120000

CHECK: Final = "container"


def _reject(code: str, message: str, hint: str | None = None) -> BundleRejectedError:
    return BundleRejectedError(
        CHECK,
        code,
        message,
        hint or "this file is not a valid fieldkit bundle; get the bundle again from its publisher",
    )


@dataclass(frozen=True)
class Member:
    """One member of a validated container."""

    name: str
    size_bytes: int
    crc32: int
    header_offset: int

    @property
    def data_offset(self) -> int:
        return self.header_offset + _LOCAL.size + len(self.name)


def _local_header(name: bytes, size: int, crc: int) -> bytes:
    return _LOCAL.pack(_LOCAL_SIG, _VERSION, 0, 0, 0, _DOS_DATE, crc, size, size, len(name), 0) + name


def _central_header(name: bytes, size: int, crc: int, offset: int) -> bytes:
    return (
        _CENTRAL.pack(
            _CENTRAL_SIG,
            _VERSION,
            _VERSION,
            0,
            0,
            0,
            _DOS_DATE,
            crc,
            size,
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        + name
    )


def _end_record(count: int, cd_size: int, cd_offset: int) -> bytes:
    return _END.pack(_END_SIG, 0, 0, count, count, cd_size, cd_offset, 0)


def check_member_name(name: str, limits: Limits) -> None:
    """Refuse any name that is not exactly one of the allowed member names.

    The specific reasons come first so that an attack is reported for what it
    is (path traversal, absolute path...) rather than as a generic stranger.
    """
    if len(name.encode("utf-8", "surrogateescape")) > limits.max_member_name_bytes:
        raise _reject("name-too-long", f"member name is longer than {limits.max_member_name_bytes} bytes")
    if not name.isascii() or not name.isprintable():
        raise _reject("bad-member-name", f"member name {name!r} has non-ASCII or control characters")
    if "\\" in name:
        raise _reject("backslash-in-name", f"member name {name!r} contains a backslash")
    if name.startswith("/"):
        raise _reject("absolute-path", f"member name {name!r} is an absolute path")
    if re.match(r"[A-Za-z]:", name):
        raise _reject("drive-letter", f"member name {name!r} starts with a drive letter")
    if any(part in ("..", ".") for part in name.split("/")):
        raise _reject("path-traversal", f"member name {name!r} contains a '..' or '.' segment")
    if name in (MANIFEST_NAME, SIGNATURES_NAME) or PAYLOAD_NAME_RE.fullmatch(name):
        return
    raise _reject(
        "unexpected-member",
        f"member {name!r} is not allowed in a bundle",
        "a bundle holds only manifest.json, signatures.json and payloads/<name>",
    )


def canonical_order(names: Iterable[str]) -> list[str]:
    """manifest.json first, payloads sorted by name, signatures.json last."""
    payloads = sorted(n for n in names if n not in (MANIFEST_NAME, SIGNATURES_NAME))
    return [MANIFEST_NAME, *payloads, SIGNATURES_NAME]


class BundleContainer:
    """A bundle file whose structure has been validated, opened for reading."""

    def __init__(self, path: Path, size_bytes: int, members: dict[str, Member], limits: Limits):
        self.path = path
        self.size_bytes = size_bytes
        self.members = members
        self.limits = limits

    @classmethod
    def open(cls, path: Path, limits: Limits) -> BundleContainer:
        try:
            with open_regular_file(path) as handle:  # a FIFO in the bundle library must not hang a scan
                size = os.fstat(handle.fileno()).st_size
                members = _read_structure(handle, size, limits)
        except UsageError as exc:  # a directory, a FIFO, a device
            raise _reject("not-a-file", exc.message, "give a .fwbundle file") from exc
        except FileNotFoundError as exc:
            raise _reject("not-found", f"bundle {path} does not exist", "check the path") from exc
        except OSError as exc:
            raise _reject("unreadable", f"cannot read {path}: {exc.strerror}", "check the file") from exc
        return cls(path, size, members, limits)

    @property
    def payload_names(self) -> list[str]:
        return [n for n in self.members if n.startswith(PAYLOAD_PREFIX)]

    def read_small(self, name: str, max_bytes: int, code_too_large: str, check: str) -> bytes:
        """Read a small member whole (manifest, signatures), bounded and CRC-checked."""
        member = self.members[name]
        if member.size_bytes > max_bytes:
            raise BundleRejectedError(
                check,
                code_too_large,
                f"{name} is {member.size_bytes} bytes, more than the {max_bytes} allowed",
                "this bundle was not made by a conforming tool; ask its publisher",
            )
        with self.path.open("rb") as handle:
            handle.seek(member.data_offset)
            data = handle.read(member.size_bytes)
        if len(data) != member.size_bytes:
            raise _reject("truncated", f"{name} ends before its declared size")
        if zlib.crc32(data) != member.crc32:
            raise _reject("crc-mismatch", f"the CRC-32 recorded for {name} does not match its bytes")
        return data

    @contextmanager
    def _positioned(self, member: Member) -> Iterator[BinaryIO]:
        with self.path.open("rb", buffering=0) as handle:
            # Only a read-ahead hint, and not on every platform.
            with contextlib.suppress(AttributeError, OSError):
                os.posix_fadvise(handle.fileno(), member.data_offset, member.size_bytes, os.POSIX_FADV_SEQUENTIAL)
            handle.seek(member.data_offset)
            yield handle

    def iter_chunks(self, name: str) -> Iterator[memoryview]:
        """Stream a member's bytes in chunks of ``read_chunk_bytes``.

        The same buffer is reused for every chunk: consume each chunk before
        asking for the next. Memory use is one chunk, whatever the payload size.
        """
        member = self.members[name]
        buffer = bytearray(self.limits.read_chunk_bytes)
        view = memoryview(buffer)
        remaining = member.size_bytes
        with self._positioned(member) as handle:
            while remaining:
                got = handle.readinto(view[: min(remaining, len(buffer))])  # type: ignore[attr-defined]
                if not got:
                    raise _reject("truncated", f"{name} ends before its declared size")
                remaining -= got
                yield view[:got]

    def digest(self, name: str) -> tuple[bytes, bool]:
        """SHA-256 of a member, streamed, and whether its recorded CRC-32 matches.

        The CRC adds nothing to integrity (SHA-256 does that), but a bundle
        whose CRC field was altered is not the bundle that was published. The
        caller judges the SHA-256 first, so a changed payload byte is reported
        as what it is.
        """
        hasher = hashlib.sha256()
        crc = 0
        for chunk in self.iter_chunks(name):
            hasher.update(chunk)
            crc = zlib.crc32(chunk, crc)
        return hasher.digest(), crc == self.members[name].crc32


def _read_exact(handle: BinaryIO, offset: int, count: int) -> bytes:
    handle.seek(offset)
    data = handle.read(count)
    if len(data) != count:
        raise _reject("truncated", "the file ends in the middle of a ZIP record")
    return data


def _find_end_record(handle: BinaryIO, size: int) -> tuple[int, int, int]:
    """Locate and check the end record; return (count, cd_size, cd_offset)."""
    head = _read_exact(handle, 0, min(size, 4))
    looks_like_zip = head == b"PK\x03\x04"
    if size < _END.size:
        if looks_like_zip:
            raise _reject("truncated", "the file is cut short: no ZIP end record")
        raise _reject("not-a-zip", "the file is not a ZIP-based bundle")
    tail = _read_exact(handle, size - _END.size, _END.size)
    if struct.unpack_from("<I", tail)[0] != _END_SIG:
        window_start = max(0, size - _END.size - 0xFFFF - 64)
        window = _read_exact(handle, window_start, size - window_start)
        if window.rfind(b"PK\x05\x06") != -1:
            raise _reject("trailing-data", "bytes follow the ZIP end record (comment or appended data)")
        if looks_like_zip:
            raise _reject("truncated", "the file is cut short: no ZIP end record")
        raise _reject("not-a-zip", "the file is not a ZIP-based bundle")
    _sig, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment_len = _END.unpack(tail)
    if comment_len:
        raise _reject("trailing-data", "the ZIP end record carries a comment")
    if disk or cd_disk or on_disk != count:
        raise _reject("multi-disk", "split (multi-disk) ZIP archives are not bundles")
    if not looks_like_zip and count:
        raise _reject("prepended-data", "bytes precede the first ZIP member")
    if cd_offset + cd_size != size - _END.size:
        raise _reject("truncated", "the central directory does not end where the end record starts")
    return count, cd_size, cd_offset


def _read_structure(handle: BinaryIO, size: int, limits: Limits) -> dict[str, Member]:
    if size == 0:
        raise _reject("empty", "the bundle file is empty")
    if size > limits.max_bundle_bytes:
        raise _reject(
            "bundle-too-large",
            f"the bundle is {size} bytes, over the {limits.max_bundle_bytes} limit",
        )
    count, cd_size, cd_offset = _find_end_record(handle, size)
    if count > limits.max_members:
        raise _reject(
            "too-many-members",
            f"the bundle has {count} members, over the {limits.max_members} limit",
        )
    directory = _read_exact(handle, cd_offset, cd_size)
    members: dict[str, Member] = {}
    position = 0
    for _ in range(count):
        if position + _CENTRAL.size > len(directory):
            raise _reject("truncated", "the central directory is shorter than its entry count")
        fields = _CENTRAL.unpack_from(directory, position)
        (
            sig,
            _made,
            _needed,
            flags,
            method,
            _t,
            _d,
            crc,
            csize,
            usize,
            name_len,
            extra_len,
            comment_len,
            _disk,
            _iattr,
            eattr,
            offset,
        ) = fields
        if sig != _CENTRAL_SIG:
            raise _reject("corrupt-directory", "a central directory entry has a bad signature")
        raw_name = directory[position + _CENTRAL.size : position + _CENTRAL.size + name_len]
        name = raw_name.decode("utf-8", "surrogateescape")
        if flags & 0x1:
            raise _reject("encrypted-member", f"member {name!r} is encrypted")
        if method != 0:
            raise _reject(
                "compressed-member",
                f"member {name!r} is compressed (method {method}); bundles store members uncompressed",
                "re-create the bundle with `fieldkit bundle create`; compressed members are refused "
                "so that no archive can expand beyond its declared size",
            )
        if (eattr >> 16) & _S_IFMT == _S_IFLNK:
            raise _reject("symlink-member", f"member {name!r} is a symbolic link")
        check_member_name(name, limits)
        if name in members:
            raise _reject("duplicate-member", f"member {name!r} appears more than once")
        if usize != csize:
            raise _reject("size-mismatch", f"member {name!r} declares two different sizes")
        if offset + _LOCAL.size + name_len + csize > cd_offset:
            raise _reject(
                "member-out-of-bounds",
                f"member {name!r} declares {usize} bytes, more than the file holds",
            )
        expected = _central_header(raw_name, usize, crc, offset)
        actual = directory[position : position + _CENTRAL.size + name_len + extra_len + comment_len]
        if actual != expected:
            raise _reject(
                "non-canonical-header",
                f"the directory entry of {name!r} has non-canonical fields",
                "re-create the bundle with `fieldkit bundle create`",
            )
        position += len(actual)
        members[name] = Member(name, usize, crc, offset)
    if position != len(directory):
        raise _reject("corrupt-directory", "the central directory holds more than its entries")

    return _check_layout(handle, members, cd_offset)


def _check_layout(handle: BinaryIO, members: dict[str, Member], cd_offset: int) -> dict[str, Member]:
    """Members back to back from offset 0, headers canonical, required members present, canonical order."""
    expected_offset = 0
    for member in sorted(members.values(), key=lambda m: m.header_offset):
        if member.header_offset < expected_offset:
            raise _reject("overlapping-members", f"member {member.name!r} overlaps the member before it")
        if member.header_offset > expected_offset:
            raise _reject("hidden-data", f"unlisted bytes lie before member {member.name!r}")
        raw_name = member.name.encode("utf-8", "surrogateescape")
        local = _read_exact(handle, member.header_offset, _LOCAL.size + len(raw_name))
        if local != _local_header(raw_name, member.size_bytes, member.crc32):
            raise _reject(
                "header-mismatch",
                f"the local header of {member.name!r} disagrees with the directory",
            )
        expected_offset = member.data_offset + member.size_bytes
    if expected_offset != cd_offset:
        raise _reject("hidden-data", "unlisted bytes lie between the last member and the directory")

    for required, code in (
        (MANIFEST_NAME, "missing-manifest"),
        (SIGNATURES_NAME, "missing-signatures"),
    ):
        if required not in members:
            raise _reject(
                code,
                f"the bundle has no {required}",
                "an unsigned or incomplete bundle cannot be trusted; get a signed one",
            )
    in_file_order = [m.name for m in sorted(members.values(), key=lambda m: m.header_offset)]
    if in_file_order != canonical_order(members):
        raise _reject(
            "non-canonical-order",
            "members are not in canonical order",
            "re-create the bundle with `fieldkit bundle create`",
        )
    return {name: members[name] for name in in_file_order}


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class PayloadSource:
    """A payload to store: its member name and the file it comes from."""

    member_name: str
    path: Path


def _copy_with_crc(source: BinaryIO, target: BinaryIO, chunk_bytes: int) -> tuple[int, int]:
    crc = 0
    size = 0
    while chunk := source.read(chunk_bytes):
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        target.write(chunk)
    return size, crc


def _file_crc(path: Path, chunk_bytes: int) -> tuple[int, int]:
    crc = 0
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return size, crc


def write_container(
    path: Path,
    manifest: bytes,
    payloads: list[PayloadSource],
    signatures: bytes,
    chunk_bytes: int = 1024 * 1024,
) -> None:
    """Write a canonical bundle atomically."""
    names = [p.member_name for p in payloads]
    if len(set(names)) != len(names):
        raise ValueError("duplicate payload member names")
    by_name = {p.member_name: p for p in payloads}
    entries: list[tuple[bytes, int, int, int]] = []  # name, size, crc, offset
    with atomic_output(path, 0o644) as out:  # bundles are published, not secret
        for name in canonical_order(names):
            raw = name.encode("ascii")
            offset = out.tell()
            if name in (MANIFEST_NAME, SIGNATURES_NAME):
                data = manifest if name == MANIFEST_NAME else signatures
                size, crc = len(data), zlib.crc32(data)
                out.write(_local_header(raw, size, crc))
                out.write(data)
            else:
                source = by_name[name].path
                size, crc = _file_crc(source, chunk_bytes)
                out.write(_local_header(raw, size, crc))
                with source.open("rb") as handle:
                    copied, copied_crc = _copy_with_crc(handle, out, chunk_bytes)
                if (copied, copied_crc) != (size, crc):
                    raise OSError(f"{source} changed while it was being added to the bundle")
            entries.append((raw, size, crc, offset))
            if out.tell() > _UINT32_MAX:
                raise ValueError("bundle would exceed 4 GiB, the limit of a ZIP without ZIP64")
        _write_directory(out, entries)


def _write_directory(out: BinaryIO, entries: list[tuple[bytes, int, int, int]]) -> None:
    cd_offset = out.tell()
    for raw, size, crc, offset in entries:
        out.write(_central_header(raw, size, crc, offset))
    cd_size = out.tell() - cd_offset
    out.write(_end_record(len(entries), cd_size, cd_offset))


def replace_signatures(container: BundleContainer, signatures: bytes) -> None:
    """Rewrite a bundle with new signatures.json, copying everything else verbatim.

    signatures.json is the last member, so every other member keeps its offset
    and bytes; only the tail (signatures, directory, end record) is rewritten.
    The result replaces the original atomically.
    """
    sig_member = container.members[SIGNATURES_NAME]
    entries = [
        (m.name.encode("ascii"), m.size_bytes, m.crc32, m.header_offset)
        for m in container.members.values()
        if m.name != SIGNATURES_NAME
    ]
    with atomic_output(container.path, 0o644) as out, container.path.open("rb") as source:
        remaining = sig_member.header_offset
        while remaining:
            chunk = source.read(min(remaining, container.limits.read_chunk_bytes))
            if not chunk:
                raise _reject("truncated", "the bundle changed while it was being signed")
            out.write(chunk)
            remaining -= len(chunk)
        raw = SIGNATURES_NAME.encode("ascii")
        crc = zlib.crc32(signatures)
        offset = out.tell()
        out.write(_local_header(raw, len(signatures), crc))
        out.write(signatures)
        entries.append((raw, len(signatures), crc, offset))
        _write_directory(out, entries)
