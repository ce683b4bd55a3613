"""Bounded, unambiguous JSON for every document fieldkit did not just write itself.

One reader for bundles' manifests and signatures, trust stores, work orders,
sync batches, audit segments, journals, the laptop's state files and what a
charger answers. Refused: more than ``max_bytes``, nesting deeper than
``max_depth`` (checked by a scan before the parser runs, so a hostile file
cannot exhaust the stack), invalid UTF-8, a byte-order mark, duplicate object
keys (two parsers could read two different documents), NaN/Infinity (not
JSON), integers of more than 20 digits and numbers too large for a float.

The document models then validate strictly (``STRICT``): no string, float or
boolean is coerced into an integer, nor a string or number into a boolean, so
one document has one reading. Times are ISO 8601 text with a zone, between
1970 and 9000 (``Timestamp``): a year-1 date cannot overflow the arithmetic
that follows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import operator
import re
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Strict, ValidationError

from fieldkit.errors import BundleRejectedError
from fieldkit.fsutil import read_regular_file


class JsonShapeError(ValueError):
    """The JSON is too big, too deep, ambiguous or malformed; ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# A string literal, or an unterminated one up to the end of the input. Every match attempt that starts at
# a quote succeeds, so the scan is linear: a pattern that had to find the closing quote would, on a long
# unterminated string of escaped quotes, try again from each quote to the end (quadratic: 13 s for 32 KB).
_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
MAX_INTEGER_DIGITS: Final = 20  # a 64-bit integer, signed or not
MAX_FLOAT_CHARS: Final = 64
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")  # opening: +1, closing: -1 (after subtracting 1)


EARLIEST_TIME: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # a laptop whose clock reset reads 1970
LATEST_TIME: Final = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)  # room to add days without overflowing year 9999
MAX_TIME_CHARS: Final = 40

# Model config of every JSON document: unknown fields refused, values never coerced between types.
STRICT: Final = ConfigDict(extra="forbid", frozen=True, strict=True)


def _time_as_text(value: object) -> object:
    # A number would be read as seconds since 1970 by pydantic's lax datetime: a document writes text.
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or len(value) > MAX_TIME_CHARS:
        raise ValueError("a time is ISO 8601 text with a zone, such as 2026-05-01T12:00:00Z")
    return value


def _sane_time(value: dt.datetime) -> dt.datetime:
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise ValueError(f"{value.isoformat()} is outside 1970..9000")
    return value


# Strict(False): the ISO text is parsed into a datetime even inside a strict model.
Timestamp = Annotated[AwareDatetime, Strict(False), BeforeValidator(_time_as_text), AfterValidator(_sane_time)]


def nesting_depth(data: bytes) -> int:
    """Deepest nesting of arrays/objects, ignoring brackets inside strings. Linear in the input, all in C.

    String literals are cut out by one regex, everything but brackets is
    deleted, and the deepest running sum of +1/-1 steps is taken by
    ``accumulate`` and ``max`` without a Python-level loop.
    """
    brackets = _STRING_RE.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(itertools.accumulate(map(operator.sub, brackets, itertools.repeat(1))), default=0)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonShapeError("duplicate-key", f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise JsonShapeError("invalid-json", f"{name} is not valid JSON")


def _bounded_int(text: str) -> int:
    # Checked before int() runs: Python refuses over 4,300 digits with a ValueError no caller expects,
    # and far fewer already mean an attack (no field of any fieldkit document needs more than int64).
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise JsonShapeError("number-too-long", f"an integer of {digits} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def _finite_float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise JsonShapeError("number-too-long", f"a number written with {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise JsonShapeError("invalid-json", f"{text} is out of range for a number")
    return value


def parse_bounded(data: bytes, max_bytes: int, max_depth: int, signed_entries: bool = False) -> Any:
    """Parse JSON bytes under the bounds above; raise JsonShapeError otherwise.

    ``signed_entries``: a document of individually signed entries (the laptop's own audit segments, read
    by the hundred during a sync). The depth scan and the duplicate-key check, a tenth of a sync's time,
    are left to what stands behind them there: CPython's decoder refuses deep nesting by itself
    (RecursionError, reported as too-deep), and an entry read two ways no longer matches its signature.
    """
    if len(data) > max_bytes:
        raise JsonShapeError("too-large", f"{len(data)} bytes, more than the {max_bytes} allowed")
    if data.startswith(b"\xef\xbb\xbf"):
        raise JsonShapeError("invalid-json", "starts with a byte-order mark")
    if not signed_entries:
        depth = nesting_depth(data)
        if depth > max_depth:
            raise JsonShapeError("too-deep", f"nested {depth} levels deep, more than the {max_depth} allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonShapeError("invalid-json", f"not UTF-8: {exc.reason}") from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=None if signed_entries else _no_duplicates,
            parse_constant=_no_constants,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise JsonShapeError("invalid-json", f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:  # the depth scan's backstop, and the guard of signed_entries documents
        raise JsonShapeError("too-deep", "nested too deeply") from exc


def load_json_file(path: Path, max_bytes: int, max_depth: int = 32) -> Any:
    """A JSON file read and parsed under the bounds above (a FIFO or device is refused, never waited on).

    Raises JsonShapeError for the content; UsageError for what is not a regular
    file or is too large; OSError (FileNotFoundError...) for the rest.
    """
    return parse_bounded(read_regular_file(path, max_bytes), max_bytes, max_depth)


def parse_for_check(data: bytes, check: str, what: str, max_bytes: int, max_depth: int) -> Any:
    """``parse_bounded`` with errors reported as a rejection of ``check``."""
    try:
        return parse_bounded(data, max_bytes, max_depth)
    except JsonShapeError as exc:
        code = {"too-large": f"{what}-too-large", "too-deep": f"{what}-too-deep"}.get(exc.code, f"{what}-{exc.code}")
        raise BundleRejectedError(
            check,
            code,
            f"{what}.json: {exc}",
            "the bundle was not made by a conforming tool; ask its publisher",
        ) from exc


def first_validation_error(exc: ValidationError, where_if_top_level: str = "") -> str:
    """The first schema error as "path.to.field: message", for one-line refusals."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or where_if_top_level
    return f"{where}: {first['msg']}"
