"""Update: preflight checklist, explicit confirmation, then live progress and the result per charger."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Static

from fieldkit.domain import ChargerIdentity
from fieldkit.errors import FieldkitError
from fieldkit.tui.actions import bindings_for, key_bar, navigation_line
from fieldkit.tui.jobs import drive
from fieldkit.tui.messages import PreflightFinished, UpdateFailed, UpdateFinished
from fieldkit.tui.outside_text import escape, plain
from fieldkit.tui.screens.base import FieldkitScreen
from fieldkit.tui.screens.dialogs import ConfirmUpdateScreen
from fieldkit.tui.widgets.fitted_table import FittedTable
from fieldkit.tui.widgets.job_panel import JobPanel
from fieldkit.updates.engine import UpdateJob
from fieldkit.updates.preflight import UNKNOWN_FACTS, PreflightResult
from fieldkit.updates.service import Confirmations

# Which charger, which check and its result stay whole; the reason wraps in what is left.
COLUMNS = ("charger", "check", "result", "reason")
KEEP = ("charger", "check", "result")

# Asked for in the confirmation dialog, so not a reason to stop at preflight: the typed serial of a
# metrology-relevant update, and what the charger cannot tell (unknown-*), which the technician checks on site.
CONFIRMED_LATER = frozenset({"metrology"})


def confirmed_later(check_name: str) -> bool:
    return check_name in CONFIRMED_LATER or check_name.startswith("unknown-")


@dataclass
class Planned:
    identity: ChargerIdentity | None
    result: PreflightResult | None
    error: str = ""

    @property
    def ok(self) -> bool:
        if self.result is None:
            return False
        return all(c.passed or c.severity != "refuse" or confirmed_later(c.name) for c in self.result.checks)

    @property
    def unknowns(self) -> list[str]:
        """What this charger cannot tell, which the technician must check on site before it starts."""
        return list(self.identity.unknown_safety_facts) if self.identity is not None else []

    @property
    def needs_typed_serial(self) -> bool:
        metrology = self.result is not None and any(c.name == "metrology" for c in self.result.checks)
        return metrology or bool(self.unknowns)


class UpdateScreen(FieldkitScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("update")

    def __init__(self) -> None:
        super().__init__()
        self.plan: dict[str, Planned] = {}
        self.jobs: dict[str, UpdateJob] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(navigation_line("update"), classes="nav")
        yield Static("", id="update-summary", classes="status")
        yield FittedTable(COLUMNS, KEEP, id="preflight-table")
        yield VerticalScroll(id="job-panels")
        yield Static("", id="update-status", classes="status")
        yield Static(key_bar("update"), classes="keybar")

    def on_screen_resume(self) -> None:
        bundle = self.fk.selected_bundle
        chargers = self.fk.selected_chargers
        serials = [self.fk.chargers[a].serial for a in chargers if a in self.fk.chargers]
        self.query_one("#update-summary", Static).update(
            f"Bundle: [b]{escape(bundle.path.name) if bundle else 'none: choose one on Bundles (2)'}[/b]  ·  "
            f"Chargers: [b]{escape(', '.join(serials)) or 'none: select with Space on Chargers (1)'}[/b]"
        )
        self._status(self._missing() or "p preflight · s start · c cancel")

    def _missing(self) -> str:
        """What the technician still has to pick before a preflight, or "" when both are picked."""
        missing = [
            *([] if self.fk.selected_bundle else ["choose a bundle (2)"]),
            *([] if self.fk.selected_chargers else ["select chargers (1)"]),
        ]
        return f"{' and '.join(missing)} first" if missing else ""

    def _status(self, text: str) -> None:
        self.query_one("#update-status", Static).update(text)

    # -- preflight -------------------------------------------------------------------

    def action_preflight(self) -> None:
        bundle = self.fk.selected_bundle
        if bundle is None or not self.fk.selected_chargers:
            self.notify(self._missing(), severity="warning")
            return
        if self.jobs:
            self.notify("updates are running; preflight again when they finish", severity="warning")
            return
        self.plan.clear()
        self.query_one(DataTable).clear()
        self.remove_class("with-jobs")
        self._status("preflight running...")
        self.run_preflight(list(self.fk.selected_chargers))

    @work(exclusive=True, group="preflight")
    async def run_preflight(self, addresses: list[str]) -> None:
        bench = self.fk.context.service
        bundle = self.fk.selected_bundle
        assert bundle is not None

        async def check(address: str) -> None:
            try:
                checked = await bench.check(address, bundle.path)
            except FieldkitError as exc:
                self.post_message(PreflightFinished(address, None, None, exc.one_line()))
                return
            self.post_message(PreflightFinished(address, checked.identity, checked.preflight))

        await asyncio.gather(*(check(a) for a in addresses))

    def on_preflight_finished(self, message: PreflightFinished) -> None:
        self.plan[message.address] = Planned(message.identity, message.result, message.error)
        table = self.query_one(FittedTable)
        name = message.identity.serial if message.identity else message.address
        if message.result is None:
            table.add_row(plain(name), "charger", "[red]NO[/]", plain(message.error), height=None)
        else:
            for check in message.result.checks:
                if check.passed:
                    mark = "[green]ok[/]"
                elif confirmed_later(check.name):
                    mark = "[yellow]at confirm[/]"
                else:
                    mark = "[yellow]warn[/]" if check.severity == "warn" else "[red]NO[/]"
                # height=None: a reason longer than its column wraps (measured after `fit` set the widths)
                # rather than being cut where the refusal says what to do.
                table.add_row(plain(name), check.name, mark, plain(check.reason), height=None)
        table.fit()
        if len(self.plan) == len(self.fk.selected_chargers):
            ready = [a for a, p in self.plan.items() if p.ok]
            refused = len(self.plan) - len(ready)
            self._status(f"preflight: {len(ready)} ready, {refused} refused" + (" · s to start" if ready else ""))

    # -- start -----------------------------------------------------------------------

    def action_start(self) -> None:
        ready = {a: p for a, p in self.plan.items() if p.ok and p.identity is not None}
        if not ready:
            self.notify("run a passing preflight (p) first", severity="warning")
            return
        if self.jobs:
            self.notify("updates are already running", severity="warning")
            return
        bundle = self.fk.selected_bundle
        assert bundle is not None
        assert bundle.manifest is not None
        summary = [
            f"{p.identity.serial}: "
            + ", ".join(
                f"{c.name} {p.identity.components[c.name].version} -> {c.version}"
                for c in bundle.manifest.components_in_order()
                if c.name in p.identity.components
            )
            for p in ready.values()
            if p.identity is not None
        ]
        serials = [p.identity.serial for p in ready.values() if p.identity is not None and p.needs_typed_serial]
        unknowns = [
            f"{p.identity.serial} cannot tell: " + "; ".join(UNKNOWN_FACTS[f] for f in p.unknowns)
            for p in ready.values()
            if p.identity is not None and p.unknowns
        ]
        self.app.push_screen(
            ConfirmUpdateScreen(summary, serials, unknowns), lambda go: self._confirmed(bool(go), list(ready))
        )

    def _confirmed(self, go: bool, addresses: list[str]) -> None:
        if not go:
            self._status("not started")
            return
        self.run_worker(self._start_jobs(addresses), group="start", exclusive=True)

    async def _start_jobs(self, addresses: list[str]) -> None:
        panels = self.query_one("#job-panels", VerticalScroll)
        await panels.remove_children()  # gone before the new panels mount (the same charger may be in both)
        self.add_class("with-jobs")  # the checklist makes room for the panels (app.tcss)
        settings = self.fk.context.service.settings
        for address in addresses:
            identity = self.plan[address].identity
            assert identity is not None
            await panels.mount(
                JobPanel(
                    address,
                    f"{identity.vendor} {identity.model} {identity.serial} ({address.removeprefix('ssh://')})",
                    settings.health_stable_s,
                    settings.health_timeout_s,
                )
            )
            self.start_job(address)
        self._status("updating · c cancels (before install it stops, after it rolls back)")

    @work(group="jobs")
    async def start_job(self, address: str) -> None:
        bench = self.fk.context.service
        bundle = self.fk.selected_bundle
        assert bundle is not None
        plan = self.plan[address]
        # The serial typed at the confirmation stands for the metrology check and for the unknown facts
        # shown there, which the technician has checked on site; the service audits both.
        serial = plan.identity.serial if plan.identity is not None else None
        confirmations = Confirmations(serial=serial, unknown_facts=frozenset(plan.unknowns))
        try:
            # The service checks again right before acting: a vehicle may have plugged in since the preflight.
            job = await bench.start(
                address, bundle.path, confirmations, self.fk.context.audit.record, self.fk.context.audit.hook()
            )
        except FieldkitError as exc:
            self.post_message(UpdateFailed(address, exc.one_line(), resumable=False))
            return
        self.jobs[address] = job
        await drive(job, address, self, self.fk.jobs_running)

    def on_update_finished(self, message: UpdateFinished) -> None:
        self.jobs.pop(message.address, None)
        panel = self.job_panel(message.address)
        if panel is not None:
            panel.show_result(message.record)
        self._after_job()

    def on_update_failed(self, message: UpdateFailed) -> None:
        self.jobs.pop(message.address, None)
        panel = self.job_panel(message.address)
        if panel is not None:
            panel.show_failure(message.message)
        else:
            self.notify(escape(message.message), severity="error")
        self._after_job()

    def _after_job(self) -> None:
        if not self.jobs:
            self.plan.clear()
            self._status("finished · see each result above · p to check again")
            self.refresh_chargers()

    @work(group="refresh")
    async def refresh_chargers(self) -> None:
        """What the chargers run now, for the Chargers screen."""
        bench = self.fk.context.service
        for address in list(self.fk.selected_chargers):
            try:
                self.fk.chargers[address] = await bench.identify(address)
            except FieldkitError:
                continue

    def action_cancel(self) -> None:
        if not self.jobs:
            self.notify("nothing is running")
            return
        for job in self.jobs.values():
            job.cancel()
        self._status("cancelling: jobs stop before install, or roll back if installing began")
