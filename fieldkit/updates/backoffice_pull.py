"""What a laptop takes from the back office after delivering its audit entries: a newer trust store and the
work orders, each accepted only under the rules that hold offline (signed by the current roots, never older).
The CLI's `audit sync` and the TUI's sync both use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fieldkit.bundles import trustops
from fieldkit.bundles.clock import TrustedState
from fieldkit.bundles.truststore import check_update
from fieldkit.bundles.workorder import WorkOrderError, save_work_order, verify_work_order
from fieldkit.config import Limits
from fieldkit.errors import TrustStoreError


class BackofficeOffers(Protocol):
    def trust_store(self) -> bytes | None: ...

    def work_orders(self) -> list[bytes]: ...


@dataclass
class PullResult:
    notes: list[str] = field(default_factory=list)  # what changed, for the sync summary
    warnings: list[str] = field(default_factory=list)  # what was offered and refused, one line each

    @property
    def summary(self) -> str:
        return "".join(f"; {note}" for note in self.notes)


def pull_from_backoffice(
    client: BackofficeOffers,
    trust_store_path: Path,
    state: TrustedState,
    limits: Limits,
    record_event: Callable[..., Any],
) -> PullResult:
    """Install a newer trust store, then every work order that verifies against the store in force."""
    result = PullResult()
    content = client.trust_store()
    if content is not None:
        try:
            offered = check_update(None, content, limits, state.read().now)
            current = trustops.open_store(trust_store_path, limits, state) if trust_store_path.exists() else None
            if current is None or offered.version > current.version:
                store = trustops.install_update(trust_store_path, content, state, limits)
                record_event("trust.update", note=f"trust store version {store.version} pulled from the back office")
                result.notes.append(f"trust store updated to version {store.version}")
        except TrustStoreError as exc:
            result.warnings.append(f"trust store from the back office not installed: {exc.one_line()}")
    documents = client.work_orders()
    if not documents:
        return result
    try:
        body = trustops.open_store(trust_store_path, limits, state).body
    except TrustStoreError as exc:
        result.warnings.append(f"work orders not installed: {exc.one_line()}")
        return result
    installed = 0
    for data in documents:
        try:
            save_work_order(data, verify_work_order(data, body, state.read().now))
            installed += 1
        except WorkOrderError as exc:
            result.warnings.append(f"a work order was refused: {exc.one_line()}")
    result.notes.append(f"{installed} work order(s) installed")
    return result
