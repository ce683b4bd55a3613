"""Events between the TUI's workers and its screens, named in the past tense."""

from __future__ import annotations

from textual.message import Message

from fieldkit.domain import ChargerIdentity
from fieldkit.updates.engine import ProgressEvent
from fieldkit.updates.journal import JobRecord
from fieldkit.updates.preflight import PreflightResult
from fieldkit.updates.service import BundleSummary


class ChargerFound(Message):
    def __init__(self, address: str, identity: ChargerIdentity) -> None:
        super().__init__()
        self.address = address
        self.identity = identity


class ChargerUnreachable(Message):
    def __init__(self, address: str, outcome: str, detail: str) -> None:
        super().__init__()
        self.address = address
        self.outcome = outcome
        self.detail = detail


class DiscoveryFinished(Message):
    """A discovery round ended (the chargers screen counts what it lists)."""


class BundlesLoaded(Message):
    def __init__(self, bundles: list[BundleSummary], fits: dict[str, str] | None = None) -> None:
        super().__init__()
        self.bundles = bundles
        self.fits = fits or {}  # bundle path -> its verdict for the chargers found ("valid" if it suits one)


class PreflightFinished(Message):
    def __init__(self, address: str, identity: ChargerIdentity | None, result: PreflightResult | None, error: str = ""):
        super().__init__()
        self.address = address
        self.identity = identity
        self.result = result
        self.error = error


class TransferProgressed(Message):
    """Any progress of a running job, not only bytes: state changes come this way too."""

    def __init__(self, address: str, event: ProgressEvent) -> None:
        super().__init__()
        self.address = address
        self.event = event


class UpdateFinished(Message):
    def __init__(self, address: str, record: JobRecord) -> None:
        super().__init__()
        self.address = address
        self.record = record


class UpdateFailed(Message):
    """The job stopped without a final state (link lost, cancelled before install): resumable."""

    def __init__(self, address: str, message: str, resumable: bool = True) -> None:
        super().__init__()
        self.address = address
        self.message = message
        self.resumable = resumable


class AuditSynced(Message):
    def __init__(self, text: str, ok: bool) -> None:
        super().__init__()
        self.text = text
        self.ok = ok
