"""One charger's update as it runs: state, bytes, rate, ETA, a throughput sparkline, the health
countdown, and at the end the result with what to do next."""

from __future__ import annotations

import itertools
import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar, Sparkline, Static

from fieldkit.domain import versions_text
from fieldkit.tui.outside_text import escape
from fieldkit.updates.engine import ProgressEvent
from fieldkit.updates.journal import JobRecord

SPARKLINE_POINTS = 40
_PANEL_NUMBERS = itertools.count(1)


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def next_steps(record: JobRecord) -> str:
    versions = escape(versions_text(record.to_versions))
    previous = escape(versions_text(record.from_versions))
    serial = escape(record.charger_serial)
    if record.state == "Committed":
        return f"[b green]Committed[/]: {serial} runs {versions}. Done; the audit trail syncs when online."
    if record.state == "RolledBack":
        why = escape(record.error or "see the audit trail")
        return (
            f"[b yellow]Rolled back[/]: {serial} runs {previous} again. Why: {why}. "
            "Next: leave it in service on the old version and report the bundle to the back office."
        )
    return f"stopped in {record.state}: resume it from Recovery (4)"


class JobPanel(Vertical):
    DEFAULT_CSS: ClassVar[str] = """
    JobPanel { height: auto; border: round $primary; padding: 0 1; margin-bottom: 1; }
    JobPanel Sparkline { height: 2; }
    JobPanel ProgressBar { width: 100%; }
    """

    def __init__(self, address: str, title: str, health_stable_s: float, health_timeout_s: float) -> None:
        super().__init__(id=f"job-{next(_PANEL_NUMBERS)}")  # unique per panel: a charger may be updated twice
        self.address = address
        self.title = title
        self.health_stable_s = health_stable_s
        self.health_timeout_s = health_timeout_s
        self.rates: list[float] = []
        self.state = "Planned"
        self.state_since = time.monotonic()
        self.health_reading = "waiting for the charger to come back"

    def compose(self) -> ComposeResult:
        yield Label(f"[b]{escape(self.title)}[/b]", classes="job-title")
        yield Static("waiting", classes="job-state")
        yield ProgressBar(total=None, show_eta=False, classes="job-bar")
        yield Sparkline([0.0], classes="job-rate")
        yield Static("", classes="job-result")

    def on_mount(self) -> None:
        self.set_interval(0.5, self._tick)

    def show_event(self, event: ProgressEvent) -> None:
        if event.state.value != self.state:
            self.state, self.state_since = event.state.value, time.monotonic()
        if event.health is not None:  # the charger's live state while it proves itself
            self.health_reading = event.health.detail
            self._tick()
        bar = self.query_one(ProgressBar)
        bar.update(total=event.bytes_total or None, progress=event.bytes_done)
        if event.rate_bytes_per_s > 0:
            self.rates = [*self.rates, event.rate_bytes_per_s][-SPARKLINE_POINTS:]
            self.query_one(Sparkline).data = self.rates
        eta = f" · ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
        rate = f" · {human_bytes(event.rate_bytes_per_s)}/s" if event.rate_bytes_per_s else ""
        self.query_one(".job-state", Static).update(
            escape(
                f"{event.state.value} {event.component or ''} · {human_bytes(event.bytes_done)} of "
                f"{human_bytes(event.bytes_total)}{rate}{eta}"
            )
        )

    def _tick(self) -> None:
        """The health check while the charger reboots and proves itself: what it reports now, and the time left."""
        if self.state != "InstallRebooting":
            return
        left = max(0.0, self.health_timeout_s - (time.monotonic() - self.state_since))
        self.query_one(".job-result", Static).update(
            escape(f"health check: {self.health_reading} · gives up in {left:.0f} s · c cancels (rolls back)")
        )

    def show_result(self, record: JobRecord) -> None:
        self.state = record.state
        self.query_one(".job-result", Static).update(next_steps(record))
        self.set_class(record.state == "Committed", "committed")
        self.set_class(record.state == "RolledBack", "rolled-back")

    def show_failure(self, message: str) -> None:
        self.state = "stopped"
        self.query_one(".job-result", Static).update(f"[b red]Stopped[/]: {escape(message)}")
        self.add_class("failed")
