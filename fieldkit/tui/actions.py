"""Every action of the TUI in one table: key bindings, the command palette and the help screen read it.

One source, so the footer, Ctrl+P and the help screen cannot disagree with
what the keys do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    key: str  # Textual key name(s), comma-separated
    action: str  # Textual action string, run on the screen (or the app, for app-wide ones)
    title: str
    help: str
    screen: str  # "app" for actions available everywhere, else the screen's mode name


ACTIONS: Final = (
    Action("1", "app.switch_mode('chargers')", "Chargers", "Chargers found by discovery, with details", "app"),
    Action("2", "app.switch_mode('bundles')", "Bundles", "The bundle library and each bundle's verdict", "app"),
    Action("3", "app.switch_mode('update')", "Update", "Preflight, confirm, and follow running updates", "app"),
    Action("4", "app.switch_mode('recovery')", "Recovery", "Interrupted jobs and chargers needing rescue", "app"),
    Action("5", "app.switch_mode('audit')", "Audit", "The audit trail, its chain and its sync", "app"),
    Action("6", "app.switch_mode('settings')", "Settings", "Identity, trust store, back office, known hosts", "app"),
    Action("question_mark,f1", "app.help", "Help", "This help", "app"),
    Action("q", "app.quit", "Quit", "Quit (running updates are journaled and resumable)", "app"),
    Action("r", "refresh", "Refresh", "Discover chargers again", "chargers"),
    Action("a", "add_target", "Add host", "Add an SSH host, HOST:PORT, CIDR range or serial URL", "chargers"),
    Action("space", "toggle_selected", "Select", "Select or unselect the charger for the update", "chargers"),
    Action(
        "u", "app.switch_mode('update')", "Update selected", "Go to the update with the selected chargers", "chargers"
    ),
    Action("enter,space", "choose_bundle", "Choose", "Use the highlighted bundle for the update", "bundles"),
    Action("i", "import_bundle", "Import", "Import a bundle file into the library (verified first)", "bundles"),
    Action("r", "reload", "Reload", "Verify the library again", "bundles"),
    Action("p", "preflight", "Preflight", "Run the preflight checks for the chosen chargers and bundle", "update"),
    Action("s", "start", "Start", "Confirm and start the update (after a passing preflight)", "update"),
    Action("c", "cancel", "Cancel", "Cancel: stops before install, rolls back after", "update"),
    Action("enter", "resume", "Resume", "Resume the highlighted interrupted job", "recovery"),
    Action("b", "roll_back", "Roll back", "Roll the highlighted job's charger back", "recovery"),
    Action("r", "reload", "Reload", "Read the job journal again", "recovery"),
    Action("slash", "filter", "Filter", "Filter entries by action, status, serial or text", "audit"),
    Action("s", "sync_now", "Sync now", "Deliver pending entries to the back office", "audit"),
    Action("v", "verify_chain", "Verify chain", "Check the whole chain and every signature", "audit"),
    Action("i", "import_trust_store", "Import trust store", "Install a newer trust store from a file", "settings"),
)


def for_screen(screen: str) -> list[Action]:
    return [a for a in ACTIONS if a.screen == screen]


def bindings_for(screen: str) -> list[BindingType]:
    return [Binding(a.key, a.action, a.title) for a in for_screen(screen)]
