"""The clock policy: "now" is never earlier than the last trusted time seen.

A service laptop is often offline with a clock that is wrong, sometimes set
back on purpose to make an expired bundle pass. fieldkit remembers the latest
time it has reason to trust (the creation time of the newest bundle that
verified, the time of the last back-office sync) and never lets "now" fall
below it. When the system clock is behind that time, the clock has gone
backwards, and that is reported.

The same state file remembers, per trust-store file, the highest version
installed there, so a trust store swapped on disk for an older copy is refused
as well. (Per file, because a release engineer legitimately edits copies.)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from fieldkit.errors import UsageError
from fieldkit.fsutil import atomic_output
from fieldkit.safejson import STRICT, Timestamp, first_validation_error, load_json_file

STATE_NAME: Final = "trusted-state.json"
MAX_STATE_BYTES: Final = 1024 * 1024


class _StateFile(BaseModel):
    model_config = STRICT

    last_trusted_time: Timestamp | None = None
    highest_trust_store_versions: dict[str, Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(default_factory=dict)


_STATE: Final = TypeAdapter(_StateFile)


@dataclass(frozen=True)
class ClockReading:
    now: dt.datetime
    system_now: dt.datetime
    last_trusted: dt.datetime | None

    @property
    def went_backwards(self) -> bool:
        return self.last_trusted is not None and self.system_now < self.last_trusted


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TrustedState:
    """Last trusted time and highest trust-store version, persisted atomically.

    A missing or unreadable state file starts empty rather than blocking work
    on site; the loss weakens the rollback checks until the next sync, and
    ``loss_warning`` says so (the CLI prints it where a trust store is in use).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._last_trusted: dt.datetime | None = None
        self._trust_store_versions: dict[str, int] = {}
        self._fixed_now: dt.datetime | None = None
        self.lost: str | None = None  # why the state file could not be read ("is missing", "is unreadable (...)")
        if path is not None:
            if path.exists():
                self._load(path)
            else:
                self.lost = "is missing"

    @classmethod
    def in_memory(cls, fixed_now: dt.datetime | None = None) -> TrustedState:
        state = cls(None)
        state._fixed_now = fixed_now
        return state

    def _load(self, path: Path) -> None:
        try:
            state = _STATE.validate_python(load_json_file(path, MAX_STATE_BYTES, 4))
            self._last_trusted = state.last_trusted_time
            self._trust_store_versions = dict(state.highest_trust_store_versions)
        except ValidationError as exc:
            self._last_trusted, self._trust_store_versions = None, {}
            self.lost = f"is unreadable ({first_validation_error(exc)})"
        except (OSError, ValueError, UsageError) as exc:  # JsonShapeError is a ValueError
            self._last_trusted, self._trust_store_versions = None, {}
            self.lost = f"is unreadable ({exc})"

    def loss_warning(self) -> str | None:
        """What it means that the state file is gone or damaged, or None when it was read (or never needed)."""
        if self.lost is None or self.path is None:
            return None
        return (
            f"{self.path} {self.lost}: until the next back-office sync or verified bundle, this laptop no longer "
            "knows its last trusted time or the trust-store versions it installed, so a clock set back or an "
            "older trust store copied over the current one would not be noticed"
        )

    def _save(self) -> None:
        if self.path is None:
            return
        document = {
            "last_trusted_time": self._last_trusted.isoformat() if self._last_trusted else None,
            "highest_trust_store_versions": self._trust_store_versions,
        }
        with atomic_output(self.path) as handle:
            handle.write(json.dumps(document, indent=2).encode("utf-8"))

    def read(self) -> ClockReading:
        system_now = self._fixed_now or utc_now()
        now = max(system_now, self._last_trusted) if self._last_trusted else system_now
        return ClockReading(now, system_now, self._last_trusted)

    def observe_time(self, trusted: dt.datetime) -> None:
        """Raise the last trusted time to ``trusted`` (never lowers it)."""
        if self._last_trusted is None or trusted > self._last_trusted:
            self._last_trusted = trusted
            self._save()

    def highest_trust_store_version(self, store_path: Path) -> int:
        return self._trust_store_versions.get(str(store_path.resolve()), 0)

    def observe_trust_store_version(self, store_path: Path, version: int) -> None:
        key = str(store_path.resolve())
        if version > self._trust_store_versions.get(key, 0):
            self._trust_store_versions[key] = version
            self._save()
