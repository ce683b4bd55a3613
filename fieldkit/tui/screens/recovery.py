"""Recovery: interrupted jobs from the journal and chargers that could not be identified, with what
the engine can do for them (resume from the journal, roll back).

Serial and USB recovery drivers (U-Boot YMODEM, DFU) add their chargers and
actions here when they arrive: a row is an address plus the actions its
driver offers.
"""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Static

from fieldkit.errors import FieldkitError
from fieldkit.tui.actions import bindings_for, key_bar, navigation_line
from fieldkit.tui.jobs import drive
from fieldkit.tui.messages import UpdateFailed, UpdateFinished
from fieldkit.tui.outside_text import escape
from fieldkit.tui.screens.base import FieldkitScreen
from fieldkit.tui.widgets.fitted_table import FittedTable
from fieldkit.tui.widgets.job_panel import JobPanel
from fieldkit.updates.auditing import rollback_entry, running_versions
from fieldkit.updates.journal import JobRecord
from fieldkit.updates.service import job_age

# The kind, the charger and its state stay whole; the rest gives way at 80 columns.
COLUMNS = ("kind", "charger", "state", "since", "address", "actions")
KEEP = ("kind", "charger", "state")


class RecoveryScreen(FieldkitScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("recovery")

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, JobRecord] = {}
        self.running: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(navigation_line("recovery"), classes="nav")
        yield Static("Interrupted jobs (from the journal) and unreachable chargers", classes="status")
        yield FittedTable(COLUMNS, KEEP, id="recovery-table")
        yield VerticalScroll(id="recovery-panels")
        yield Static("", id="recovery-status", classes="status")
        yield Static(key_bar("recovery"), classes="keybar")

    def on_screen_resume(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, group="recovery-load", thread=True)
    def load(self) -> None:
        records = self.fk.context.service.unfinished()
        self.app.call_from_thread(self._show, records)

    def _show(self, records: list[JobRecord]) -> None:
        self.records = {r.job_id: r for r in records}
        table = self.query_one(FittedTable)
        table.clear()
        for record in records:
            age = job_age(record)
            table.add_row(
                "job",
                record.charger_serial,
                record.state,
                f"{age.total_seconds() / 60:.0f} min ago" if age else "?",
                record.charger_address.removeprefix("ssh://"),
                "Enter resume · b roll back",
                key=record.job_id,
            )
        for address, problem in self.fk.charger_problems.items():
            # Nothing can be rolled back over a link that does not answer: the way on is the link itself.
            table.add_row(
                "unreachable",
                address.removeprefix("ssh://"),
                problem.split(":", 1)[0][:24],  # the outcome word; the whole problem is on the Chargers screen
                "",
                address.removeprefix("ssh://"),
                "check cable/power, r",
                key=address,
            )
        table.fit()
        self.query_one("#recovery-status", Static).update(
            f"{len(records)} interrupted job(s)" if records else "no interrupted jobs"
        )

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_resume()

    def action_resume(self) -> None:
        key = self.highlighted_key()
        record = self.records.get(key or "")
        if record is None:
            self.notify("highlight an interrupted job to resume", severity="warning")
            return
        if record.job_id in self.running:
            return
        self.running.add(record.job_id)
        settings = self.fk.context.service.settings
        self.query_one("#recovery-panels", VerticalScroll).mount(
            JobPanel(
                record.charger_address,
                f"resuming {record.charger_serial} from {record.state}",
                settings.health_stable_s,
                settings.health_timeout_s,
            )
        )
        self.resume(record)

    @work(group="recovery-jobs")
    async def resume(self, record: JobRecord) -> None:
        try:
            job = self.fk.context.service.resume_job(record, self.fk.context.audit.hook())
        except FieldkitError as exc:
            self.post_message(UpdateFailed(record.charger_address, exc.one_line(), resumable=False))
            return
        await drive(job, record.charger_address, self, self.fk.jobs_running)

    def action_roll_back(self) -> None:
        key = self.highlighted_key()
        if key is None:
            return
        record = self.records.get(key)
        if record is None and key in self.fk.charger_problems:
            self.notify(
                escape(f"{key} does not answer, so it cannot be rolled back from here: check its cable and power, "
                       "then refresh (r on Chargers); a charger that booted its good image needs nothing"),
                severity="warning", timeout=10,
            )  # fmt: skip
            return
        address = record.charger_address if record is not None else key
        self.query_one("#recovery-status", Static).update(escape(f"rolling back {address} ..."))
        self.roll_back(address)

    @work(group="recovery-jobs")
    async def roll_back(self, address: str) -> None:
        try:
            before, after = await self.fk.context.service.rollback(address)
        except FieldkitError as exc:
            self.notify(escape(f"rollback of {address} failed: {exc.one_line()}"), severity="error", timeout=10)
            return
        versions = running_versions(after)
        self.fk.context.audit.record("rollback", **rollback_entry(before, after, address))
        self.notify(escape(f"{after.serial} rolled back: now running {versions}"))
        self.query_one("#recovery-status", Static).update(escape(f"{after.serial} now runs {versions}"))

    def on_update_finished(self, message: UpdateFinished) -> None:
        self.running.discard(message.record.job_id)
        panel = self.job_panel(message.address)
        if panel is not None:
            panel.show_result(message.record)
        self.action_reload()

    def on_update_failed(self, message: UpdateFailed) -> None:
        panel = self.job_panel(message.address)
        if panel is not None:
            panel.show_failure(message.message)
        self.running = {
            j for j in self.running if self.records.get(j) and self.records[j].charger_address != message.address
        }
        self.action_reload()
