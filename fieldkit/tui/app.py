"""The technician's terminal UI: `fieldkit` with no arguments, or `fieldkit tui`.

Screens are Textual modes (1-6 switch between them), every action is in
actions.py (keys, command palette and help screen read it), and the app does
no I/O itself: screens start workers that call the core through
services.py, and the core's events come back as messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import ClassVar, Final

from textual import work
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from fieldkit.domain import ChargerIdentity
from fieldkit.errors import FieldkitError
from fieldkit.tui.actions import ACTIONS, bindings_for
from fieldkit.tui.messages import AuditSynced
from fieldkit.tui.outside_text import escape
from fieldkit.tui.screens.audit import SYNC_INTERVAL_S, AuditScreen
from fieldkit.tui.screens.bundles import BundlesScreen
from fieldkit.tui.screens.chargers import ChargersScreen
from fieldkit.tui.screens.dialogs import ConfirmQuitScreen, HelpScreen, PassphraseScreen, ResumeOfferScreen
from fieldkit.tui.screens.recovery import RecoveryScreen
from fieldkit.tui.screens.settings import SettingsScreen
from fieldkit.tui.screens.update import UpdateScreen
from fieldkit.tui.services import TuiContext
from fieldkit.updates.engine import UpdateJob
from fieldkit.updates.service import BundleSummary


class ActionCommands(Provider):
    """Ctrl+P: every action of the app, of the screen on show, and of the other screens (which it opens first)."""

    def _available(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        mode = getattr(app, "current_mode", "")
        entries: list[tuple[str, str, Callable[[], object]]] = []
        for action in ACTIONS:
            if action.screen in ("app", mode):
                entries.append((action.title, action.help, partial(app.run_action, action.action, self.screen)))
            else:
                title = f"{action.title} ({action.screen.capitalize()})"
                entries.append((title, action.help, partial(_on_screen, app, action.screen, action.action)))
        return entries

    async def discover(self) -> Hits:
        for title, help_text, run in self._available():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._available():
            score = matcher.match(f"{title} {help_text}")
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)


async def _on_screen(app: App[object], mode: str, action: str) -> None:
    """Open ``mode``'s screen, then run ``action`` there (a palette entry of another screen)."""
    await app.switch_mode(mode)
    await app.run_action(action, app.screen)


# The app's result when the technician quit while updates ran: the caller ends the process without
# waiting for their threads (their journals hold where they were; the next start offers to resume them).
JOBS_LEFT_RUNNING: Final = "jobs-left-running"


class FieldkitApp(App[str | None]):
    CSS_PATH = "app.tcss"
    # Below 110 columns a screen's detail pane goes under its table (app.tcss, `-narrow`): beside it, at 80
    # columns, it left the table too little room for a serial, a model, a version and a verdict side by side.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 (a list, as App declares it)
    TITLE = "fieldkit"
    SUB_TITLE = "offline charger updates"
    MODES: ClassVar = {
        "chargers": ChargersScreen,
        "bundles": BundlesScreen,
        "update": UpdateScreen,
        "recovery": RecoveryScreen,
        "audit": AuditScreen,
        "settings": SettingsScreen,
    }
    DEFAULT_MODE = "chargers"
    COMMANDS: ClassVar = App.COMMANDS | {ActionCommands}
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("app")

    def __init__(self, context: TuiContext) -> None:
        super().__init__()
        self.context = context
        # Shared state the screens read; workers change it only through messages on the UI thread.
        self.chargers: dict[str, ChargerIdentity] = {}
        self.charger_problems: dict[str, str] = {}
        self.selected_chargers: list[str] = []
        self.bundles: list[BundleSummary] = []
        self.selected_bundle: BundleSummary | None = None
        self.jobs_running: dict[str, UpdateJob] = {}  # job id -> job, whichever screen started it (tui/jobs.py)

    def on_mount(self) -> None:
        audit = self.context.audit
        if audit.has_identity and not audit.unlocked:
            try:
                if not audit.unlock_from_environment():
                    self.push_screen(PassphraseScreen(), self._unlocked)
            except Exception as exc:  # a wrong passphrase file: say so, ask instead
                self.notify(escape(f"audit trail locked: {exc}"), severity="warning")
                self.push_screen(PassphraseScreen(), self._unlocked)
        if audit.can_sync:
            self.set_interval(SYNC_INTERVAL_S, self.sync_in_background)
        self._warn_if_trusted_state_lost()
        unfinished = self.context.service.unfinished()
        if unfinished:
            self.push_screen(ResumeOfferScreen(unfinished), self._resume_offer_answered)

    def _warn_if_trusted_state_lost(self) -> None:
        """Say it when the file behind the clock and trust-store rollback checks is gone (as the CLI does).

        Only on a laptop in use (its own trust store installed), not on one being set up, where there is
        nothing yet to lose.
        """
        from fieldkit.config import default_trust_store_path

        warning = self.context.service.state.loss_warning()
        if warning and default_trust_store_path().exists():
            self.notify(escape(warning), title="trusted state lost", severity="warning", timeout=30)

    def _unlocked(self, passphrase: str | None) -> None:
        if passphrase is None:
            self.notify("audit trail not unlocked: updates will not be recorded", severity="warning")
            return
        try:
            self.context.audit.unlock(passphrase.encode("utf-8"))
        except Exception as exc:
            self.notify(escape(f"could not unlock the laptop key: {exc}"), severity="error")
            self.push_screen(PassphraseScreen(), self._unlocked)
            return
        self.notify("audit trail unlocked")

    def _resume_offer_answered(self, go: bool | None) -> None:
        if go:
            self.switch_mode("recovery")

    @work(exclusive=True, group="background-sync", thread=True)
    def sync_in_background(self) -> None:
        """Deliver pending audit entries while the app runs; quiet unless something happened."""
        try:
            self.post_message(AuditSynced(self.context.audit.sync_now(), True))
        except FieldkitError as exc:
            self.post_message(AuditSynced(exc.one_line(), False))

    def on_audit_synced(self, message: AuditSynced) -> None:
        if message.ok and "0 new entries" not in message.text:
            self.notify(escape(message.text))

    def running_jobs(self) -> list[str]:
        """The updates running now (from any screen), one line each: serial, address, state."""
        return [
            f"{job.record.charger_serial} ({job.record.charger_address}): {job.record.state}"
            for job in self.jobs_running.values()
        ]

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own palette entries, less its Quit: ours (which asks while updates run) is listed."""
        return (command for command in super().get_system_commands(screen) if command.title != "Quit")

    async def action_quit(self) -> None:
        """Quit; while updates run, ask first and say what becomes of them."""
        running = self.running_jobs()
        if not running:
            self.exit()
            return

        def answered(quit_now: bool | None) -> None:
            if quit_now:
                self.exit(result=JOBS_LEFT_RUNNING)

        self.push_screen(ConfirmQuitScreen(running), answered)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def toggle_charger(self, address: str) -> bool:
        """Select or unselect a charger for the update; True if now selected."""
        if address in self.selected_chargers:
            self.selected_chargers.remove(address)
            return False
        self.selected_chargers.append(address)
        return True

    def on_unmount(self) -> None:
        self.context.audit.close()
