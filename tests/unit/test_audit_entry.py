"""The audit entry's canonical forms and signatures."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.audit.entry import (
    canonical_forms,
    canonical_json,
    entry_hash,
    sign_entry,
    signature_valid,
    verify_and_hash,
)


@pytest.mark.parametrize(
    "raw",
    [
        {"seq": 1, "note": "plain", "nested": {"b": [1, 2, {"z": None}], "a": True}},
        {"ünïcode": "é€😀", "a\u0080": 1, "\U0001f600": "emoji key", "\ufb01": "ligature", "signature": "x"},
        {"signature": "s", "seq": 2, "site": None, "prev_hash": "0" * 64},
    ],
)
def test_member_wise_canonicalisation_equals_rfc8785(raw: dict[str, Any]) -> None:
    unsigned, full = canonical_forms(raw)
    assert full == rfc8785.dumps(raw)
    assert unsigned == rfc8785.dumps({k: v for k, v in raw.items() if k != "signature"})


def test_sign_verify_and_hash_agree() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signed = sign_entry({"seq": 1, "note": "hello"}, key)
    assert signature_valid(signed, key.public_key())
    verified = verify_and_hash(signed, key.public_key())
    assert verified is not None
    assert verified[0] == entry_hash(signed)
    assert verified[1] == rfc8785.dumps(signed)
    tampered = {**signed, "note": "hellO"}
    assert not signature_valid(tampered, key.public_key())
    assert verify_and_hash(tampered, key.public_key()) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(value=json_values)
def test_fast_canonical_json_equals_rfc8785(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017, PT011
            canonical_json(value).decode("utf-8")
        return
    assert canonical_json(value) == expected


def test_nesting_depth_ignores_brackets_in_strings_and_escapes() -> None:
    from fieldkit.safejson import nesting_depth

    assert nesting_depth(b'{"a": "[\\"[{", "b": [[1]]}') == 3
    assert nesting_depth(b"[" * 50 + b"]" * 50) == 50
