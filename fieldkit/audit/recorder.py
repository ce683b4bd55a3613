"""What callers use to write audit entries: identity + clock policy + store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fieldkit.audit.entry import MAX_ERROR_CHARS, MAX_NOTE_CHARS, ClockTrust
from fieldkit.audit.identity import load_profile, unlock
from fieldkit.audit.store import AuditStore
from fieldkit.bundles.clock import ClockReading, TrustedState


def clock_trust(reading: ClockReading) -> ClockTrust:
    if reading.went_backwards:
        return "went-backwards"
    return "trusted" if reading.last_trusted is not None else "laptop-clock"


class AuditRecorder:
    """Appends entries signed by this laptop, timed by the clock policy."""

    def __init__(
        self,
        passphrase: bytes | Callable[[], bytes],
        state: TrustedState,
        identity_directory: Path | None = None,
        audit_directory: Path | None = None,
    ) -> None:
        self.profile = load_profile(identity_directory)
        self._key = unlock(passphrase, identity_directory)
        self._state = state
        self.store = AuditStore.open(audit_directory)

    def record(self, action: str, **fields: Any) -> dict[str, Any]:
        reading = self._state.read()
        for name, limit in (("error", MAX_ERROR_CHARS), ("note", MAX_NOTE_CHARS)):
            fields[name] = fitted(fields.get(name), limit)
        return self.store.append(
            self._key, self.profile, action, wall_utc=reading.now, clock_trust=clock_trust(reading), **fields
        )

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> AuditRecorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def fitted(text: str | None, limit: int) -> str | None:
    """Free text cut to ``limit`` characters, saying so: a long refusal is still recorded, marked as cut."""
    if text is None or len(text) <= limit:
        return text
    marker = f" … [cut: {len(text)} characters in all]"
    return text[: limit - len(marker)] + marker
