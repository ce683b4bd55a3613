from __future__ import annotations

import time

import pytest

from fieldkit.bundles.semver import Version
from fieldkit.safejson import JsonShapeError, nesting_depth, parse_bounded


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"a": 1, "a": 2}', "duplicate-key"),
        (b'{"a": NaN}', "invalid-json"),
        (b"\xef\xbb\xbf{}", "invalid-json"),
        (b'{"a": "\xff"}', "invalid-json"),
        (b"[" * 40 + b"]" * 40, "too-deep"),
        (b"x" * 2000, "too-large"),
        (b"{", "invalid-json"),
        (b'{"n": ' + b"9" * 500 + b"}", "number-too-long"),  # 5,000 digits would end in Python's own ValueError
        (b'{"n": -' + b"1" * 21 + b"}", "number-too-long"),
        (b'{"n": 1e999}', "invalid-json"),  # infinity, spelt as a number
        (b'{"n": 0.' + b"1" * 80 + b"}", "number-too-long"),
    ],
)
def test_hostile_json_is_refused(data: bytes, code: str) -> None:
    with pytest.raises(JsonShapeError) as caught:
        parse_bounded(data, max_bytes=1000, max_depth=32)
    assert caught.value.code == code


def test_numbers_a_document_needs_still_parse() -> None:
    document = b'{"max": 18446744073709551615, "min": -9223372036854775808, "ratio": 0.5, "big": 1e300}'
    assert parse_bounded(document, 1000, 4) == {
        "max": 2**64 - 1, "min": -(2**63), "ratio": 0.5, "big": 1e300
    }  # fmt: skip


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    assert nesting_depth(b'{"a": "[[[[[[\\"]]]"}') == 1
    assert parse_bounded(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 1000, 2) == {"a": "[" * 35}


@pytest.mark.parametrize(
    ("data", "depth"),
    [
        (b"", 0),
        (b"{}", 1),
        (b'[{"a": [1, "]]]"]}]', 3),
        (b'["unterminated [[[', 1),  # an unterminated string hides its brackets: the parser refuses it anyway
        (b'["ends in a backslash \\', 1),
    ],
)
def test_nesting_depth(data: bytes, depth: int) -> None:
    assert nesting_depth(data) == depth


HOSTILE = {  # (prefix, repeated unit, suffix): what made the old scan quadratic, and the worst cases for this one
    "unterminated escaped quotes": (b'"', b'\\"', b""),
    "... ending in a lone backslash": (b'"', b'\\"', b"\\"),
    "strings opened in arrays": (b"", b'["', b""),
    "brackets only": (b"", b"[", b""),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_the_depth_scan_is_linear_in_the_input(case: str) -> None:
    """Four times the input may take about four times as long, never sixteen (quadratic).

    Timed against itself in the same run, best of several, so a slow or loaded machine does not decide it.
    """
    prefix, unit, suffix = HOSTILE[case]

    def best_time(size_bytes: int) -> float:
        data = prefix + unit * (size_bytes // len(unit)) + suffix
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            nesting_depth(data)
            timings.append(time.perf_counter() - start)
        return min(timings)

    small, large = best_time(64 * 1024), best_time(256 * 1024)
    assert large / small < 9, f"{case}: 4x the input took {large / small:.1f}x as long"


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0", "2.0.0"),
        ("2.0.0", "2.1.0"),
        ("2.1.0", "2.1.1"),
        ("1.0.0-alpha", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.9.0", "1.10.0"),
    ],
)
def test_semver_precedence(lower: str, higher: str) -> None:
    assert Version.parse(lower) < Version.parse(higher)
    assert not Version.parse(higher) < Version.parse(lower)


def test_build_metadata_does_not_change_precedence() -> None:
    assert Version.parse("1.0.0+build.1") == Version.parse("1.0.0+build.2")


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-01", ""])
def test_invalid_versions_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a semantic version"):
        Version.parse(text)
