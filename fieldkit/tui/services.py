"""What the TUI's screens call: the update service and the audit trail, wrapped for a long-running app.

No Textual here: this is the glue between the UI and the core, kept thin so
screens stay about presentation. The audit trail is opened once for the
session (after the passphrase is known) and shared, behind one lock, by the
update jobs that record transitions and the background sync.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fieldkit.audit.identity import identity_dir, load_profile, passphrase_from_environment
from fieldkit.audit.recorder import AuditRecorder
from fieldkit.audit.store import AuditStore
from fieldkit.audit.sync import BackofficeClient, Credential, SyncError, sync_with_retries
from fieldkit.errors import FieldkitError
from fieldkit.updates.auditing import transition_hook
from fieldkit.updates.backoffice_pull import pull_from_backoffice
from fieldkit.updates.engine import AuditHook
from fieldkit.updates.journal import JobRecord
from fieldkit.updates.service import UpdateService


@dataclass
class SyncStatus:
    entries: int = 0
    pending: int = 0
    last_success_at: str | None = None
    last_error: str | None = None
    reachable: bool | None = None  # None: not checked (no credential)
    chain: str = "not checked"


class AuditService:
    """The session's audit trail: recording, reading, verifying and syncing."""

    def __init__(self, service: UpdateService, credential_path: Path | None = None) -> None:
        self.service = service
        self.chain_verdict = "not checked (v checks it)"
        self.credential_path = credential_path or identity_dir() / "backoffice-credential.json"
        self._recorder: AuditRecorder | None = None
        self._lock = threading.Lock()
        self._entries_cache: tuple[int, list[dict[str, Any]]] | None = None  # (head seq, entries)

    @property
    def has_identity(self) -> bool:
        return (identity_dir() / "profile.json").exists()

    @property
    def unlocked(self) -> bool:
        return self._recorder is not None

    def unlock(self, passphrase: bytes) -> None:
        """Open the trail for writing with the laptop key (raises on a wrong passphrase)."""
        if self._recorder is None:
            self._recorder = AuditRecorder(passphrase, self.service.state)

    def unlock_from_environment(self) -> bool:
        passphrase = passphrase_from_environment()
        if passphrase is None or not self.has_identity:
            return False
        self.unlock(passphrase)
        return True

    def hook(self) -> AuditHook | None:
        if self._recorder is None:
            return None
        inner = transition_hook(self._recorder)

        def locked(record: JobRecord, status: str, note: str) -> None:
            with self._lock:
                inner(record, status, note)

        return locked

    def record(self, action: str, **fields: Any) -> None:
        if self._recorder is not None:
            with self._lock:
                self._recorder.record(action, **fields)

    @contextmanager
    def _store(self, writable: bool) -> Iterator[AuditStore]:
        """The trail under the session lock: the recorder's open store once unlocked, else opened for this use."""
        with self._lock:
            if self._recorder is not None:
                yield self._recorder.store
                return
            with AuditStore.open(writable=writable) as store:
                yield store

    def entries(self) -> list[dict[str, Any]]:
        if not self.has_identity:
            return []
        with self._store(writable=False) as store:
            # The detail pane asks on every cursor move: read the trail again only when it grew.
            if self._entries_cache is None or self._entries_cache[0] != store.head_seq:
                self._entries_cache = (store.head_seq, list(store.entries()))
            return self._entries_cache[1]

    def status(self) -> SyncStatus:
        if not self.has_identity:
            return SyncStatus(chain="no laptop identity (fieldkit identity init)")
        with self._store(writable=False) as store:
            state = store.sync_state()
            return SyncStatus(
                store.head_seq,
                store.pending_count,
                state.get("last_success_at"),
                state.get("last_error"),
                chain=self.chain_verdict,
            )

    def verify_chain(self) -> str:
        if not self.has_identity:
            return "no laptop identity"
        profile = load_profile()
        with self._store(writable=False) as store:
            report = store.verify(profile.public_key(), profile.laptop_id)
        if report.ok:
            verdict = f"intact: {report.count} entries, every signature valid" + "".join(
                f"; {w}" for w in report.warnings
            )
        else:
            verdict = f"BROKEN at entry {report.broken_seq}: {report.reason}"
        self.chain_verdict = verdict  # the status line shows the last check, not "not checked"
        return verdict

    @property
    def can_sync(self) -> bool:
        return self.credential_path.exists()

    def backoffice_url(self) -> str:
        if self.can_sync:
            try:
                return Credential.load(self.credential_path).backoffice_url
            except FieldkitError as exc:
                return f"(credential unreadable: {exc.message})"
        return self.service.settings.backoffice_url or "(not enrolled)"

    def sync_now(self) -> str:
        """One delivery attempt; the result in words. Blocking: call from a worker thread."""
        if not self.can_sync:
            return "not enrolled with a back office: ask for a credential (fieldkit backoffice enroll-laptop)"
        credential = Credential.load(self.credential_path)
        with BackofficeClient(credential) as client:
            # Checked before taking the lock: an update recording its transitions must not wait
            # on a back office that does not answer.
            if not client.reachable():
                raise SyncError(f"back office {credential.backoffice_url} is not reachable")
            with self._store(writable=True) as store:
                result = sync_with_retries(store, client, 1)
            # As `fieldkit audit sync` does: a newer trust store and the work orders, under the offline rules.
            bench = self.service
            pulled = pull_from_backoffice(client, bench.trust_store, bench.state, bench.settings.limits, self.record)
        warnings = "".join(f"; {w}" for w in pulled.warnings)
        return f"synced: {result.stored} new entries stored; {result.pending} pending{pulled.summary}{warnings}"

    def reachable(self) -> bool | None:
        if not self.can_sync:
            return None
        with BackofficeClient(Credential.load(self.credential_path), timeout_s=3.0) as client:
            return client.reachable()

    def close(self) -> None:
        with self._lock:
            if self._recorder is not None:
                self._recorder.close()
                self._recorder = None


@dataclass
class TuiContext:
    """What the app was started with: the update service, the audit trail, where to look for chargers."""

    service: UpdateService
    audit: AuditService
    targets: list[str] = field(default_factory=list)  # charger addresses (ssh://, sim://), HOST[:PORT] or CIDR to scan
    user: str = "root"
    mdns: bool = False
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
