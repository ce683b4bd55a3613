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
    in_footer: bool = True  # the screen switches are on the navigation line instead: a shorter footer redraws fast


def _switch(key: str, mode: str, title: str, help_text: str) -> Action:
    return Action(key, f"app.switch_mode('{mode}')", title, help_text, "app", in_footer=False)


ACTIONS: Final = (
    _switch("1", "chargers", "Chargers", "Chargers found by discovery, with details"),
    _switch("2", "bundles", "Bundles", "The bundle library and each bundle's verdict"),
    _switch("3", "update", "Update", "Preflight, confirm, and follow running updates"),
    _switch("4", "recovery", "Recovery", "Interrupted jobs and chargers needing rescue"),
    _switch("5", "audit", "Audit", "The audit trail, its chain and its sync"),
    _switch("6", "settings", "Settings", "Identity, trust store, back office, known hosts"),
    Action("question_mark,f1", "app.help", "Help", "This help", "app"),
    Action("q", "app.quit", "Quit", "Quit (asks while updates run; they stay journaled, offered for resume)", "app"),
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
    Action("c", "cancel", "Cancel", "Cancel: stops before install, rolls back after (health check included)", "update"),
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
    return [Binding(a.key, a.action, a.title, show=a.in_footer) for a in for_screen(screen)]


def navigation_line(current: str) -> str:
    """1 Chargers  2 Bundles ... with the screen on show highlighted."""
    parts = []
    for action in ACTIONS:
        if action.screen == "app" and action.action.startswith("app.switch_mode("):
            mode = action.action.split("'")[1]
            label = f"{action.key} {action.title}"
            parts.append(f"[reverse] {label} [/]" if mode == current else f" {label} ")
    return "".join(parts)


KEY_LABELS: Final = {"question_mark": "?", "slash": "/", "space": "Space", "enter": "Enter", "f1": "F1"}


def key_bar(screen: str) -> str:
    """The footer line: this screen's keys, then the app's, each clickable (Content markup @click)."""
    parts = []
    for action in [*for_screen(screen), *for_screen("app")]:
        if not action.in_footer:
            continue
        key = KEY_LABELS.get(action.key.split(",")[0], action.key.split(",")[0])
        target = action.action if action.action.startswith("app.") else f"screen.{action.action}"
        parts.append(f"[@click={target}][b]{key}[/b] {action.title}[/]")
    return "  ".join(parts) + "  [@click=app.command_palette][b]^p[/b] palette[/]"
