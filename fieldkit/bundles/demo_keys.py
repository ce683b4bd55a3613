"""The demo's keys, derived from fixed seeds so the demo is reproducible.

Anyone can derive these private keys from this file, so they must never be
trusted outside the demo: `is_demo_key` lets trust-store operations refuse
them in any store not marked ``demo``.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from fieldkit.bundles import keys

DEMO_KEY_NAMES: Final = (
    "demo-trust-root",
    "demo-release",
    "demo-metrology",
    "demo-oem-root-ca",
    "demo-oem-signing",
    "demo-ocpp-root-ca",
    "demo-ocpp-signing",
)
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _seed(name: str) -> bytes:
    return hashlib.sha256(b"fieldkit demo key, never trust outside the demo:" + name.encode()).digest()


def demo_private_key(name: str) -> keys.PrivateKey:
    """Ed25519 for fieldkit's own roles, ECDSA P-256 for the X.509 (OEM) demo keys."""
    if name not in DEMO_KEY_NAMES:
        raise KeyError(name)
    seed = _seed(name)
    if "-oem-" in name or "-ocpp-" in name:
        scalar = int.from_bytes(seed, "big") % (_P256_ORDER - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


@functools.cache
def demo_key_ids() -> frozenset[str]:
    return frozenset(keys.key_id(demo_private_key(n).public_key()) for n in DEMO_KEY_NAMES)


def is_demo_key(kid: str) -> bool:
    return kid in demo_key_ids()
