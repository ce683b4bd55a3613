"""Modal dialogs: help, passphrase, a line of input, the update confirmation, the resume offer."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown, Static

from fieldkit.tui.actions import ACTIONS
from fieldkit.tui.outside_text import escape
from fieldkit.updates.journal import JobRecord

SCREEN_TITLES = {
    "app": "Everywhere",
    "chargers": "Chargers (1)",
    "bundles": "Bundles (2)",
    "update": "Update (3)",
    "recovery": "Recovery (4)",
    "audit": "Audit (5)",
    "settings": "Settings (6)",
}
KEY_NAMES = {"question_mark": "?", "slash": "/", "space": "Space", "enter": "Enter", "f1": "F1"}


def help_markdown() -> str:
    lines = [
        "# fieldkit",
        "",
        "Update a charger: **1** find it and select it with **Space**, **2** choose a bundle with **Enter**, "
        "**3** run the preflight (**p**), start (**s**), confirm. The update journals every step: "
        "if anything interrupts it, **4** offers to resume. **Ctrl+P** finds any action by name.",
        "",
    ]
    for screen, title in SCREEN_TITLES.items():
        actions = [a for a in ACTIONS if a.screen == screen]
        lines += [f"## {title}", "", "| key | action |", "|---|---|"]
        for action in actions:
            keys = " / ".join(KEY_NAMES.get(k, k) for k in action.key.split(","))
            lines.append(f"| {keys} | {action.title}: {action.help} |")
        lines.append("")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="dialog"):
            yield Markdown(help_markdown(), id="help-text")
            yield Label("Esc closes this help", classes="hint")


class PromptScreen(ModalScreen[str | None]):
    """One line of input; Enter returns it, Esc returns None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, placeholder: str = "", password: bool = False) -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.password = password

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Input(placeholder=self.placeholder, password=self.password, id="prompt-input")
            yield Label("Enter to accept, Esc to cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PassphraseScreen(PromptScreen):
    def __init__(self) -> None:
        super().__init__("Laptop identity passphrase (signs the audit trail)", password=True)


class ConfirmUpdateScreen(ModalScreen[bool]):
    """The explicit go-ahead; a metrology-relevant bundle needs every charger's serial typed.

    Cancel has the focus, so a stray Enter (gloves) never starts an update: it takes `y`,
    a click on Start, or the serials typed and Enter.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "accept", "Start update"),
    ]
    AUTO_FOCUS = "#confirm-no"

    def __init__(self, summary: list[str], serials_to_type: list[str], unknowns: list[str] | None = None) -> None:
        super().__init__()
        self.summary = summary
        self.serials_to_type = serials_to_type
        self.unknowns = unknowns or []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Label("[b]Start this update?[/b]")
            for line in self.summary:
                yield Static(escape(line))
            for line in self.unknowns:
                yield Static("[yellow]unknown[/yellow] " + escape(line))
            if self.serials_to_type:
                reason = "Check what is unknown on site. " if self.unknowns else ""
                yield Label(
                    reason
                    + "Metrology-relevant or unknown: type the serial of each charger, separated by spaces: "
                    + escape(", ".join(self.serials_to_type))
                )
                yield Input(placeholder="serial(s)", id="confirm-serials")
            yield Label("", id="confirm-problem", classes="problem")
            yield Label("y or Start: go ahead · Esc, n or Cancel: do not update", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Start update", variant="warning", id="confirm-yes")
                yield Button("Cancel", id="confirm-no")

    def _typed_ok(self) -> bool:
        if not self.serials_to_type:
            return True
        typed = self.query_one("#confirm-serials", Input).value.split()
        return sorted(typed) == sorted(self.serials_to_type)

    def _accept(self) -> None:
        if self._typed_ok():
            self.dismiss(True)
        else:
            self.query_one("#confirm-problem", Label).update("The serials typed do not match the chargers.")

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self._accept()

    def action_accept(self) -> None:
        self._accept()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm-yes":
            self._accept()
        else:
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


class ResumeOfferScreen(ModalScreen[bool]):
    """At start-up: interrupted jobs exist; offer to go to Recovery and resume them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "go", "Open Recovery"),
        Binding("escape", "later", "Later"),
    ]

    def __init__(self, records: list[JobRecord]) -> None:
        super().__init__()
        self.records = records

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="resume-offer"):
            yield Label(f"[b]{len(self.records)} interrupted update job(s)[/b]")
            for record in self.records[:5]:
                yield Static(escape(f"{record.charger_serial} ({record.charger_address}): stopped in {record.state}"))
            yield Label("Enter: open Recovery to resume · Esc: later", classes="hint")

    def action_go(self) -> None:
        self.dismiss(True)

    def action_later(self) -> None:
        self.dismiss(False)


class ConfirmQuitScreen(ModalScreen[bool]):
    """Quit while updates run: say what happens to them, and ask."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "quit", "Quit now"),
        Binding("escape,n", "stay", "Stay"),
    ]

    def __init__(self, running: list[str]) -> None:
        super().__init__()
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-quit"):
            yield Label(f"[b]{len(self.running)} update(s) running[/b]")
            for line in self.running[:5]:
                yield Static(escape(line))
            yield Static(
                "Quitting now stops them where they are. Each is journaled: the chargers keep a good image, "
                "and the next start offers to resume them."
            )
            with Horizontal(classes="buttons"):
                yield Button("Quit now (y)", variant="warning", id="quit-yes")
                yield Button("Stay (n)", id="quit-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit-yes")

    def action_quit(self) -> None:
        self.dismiss(True)

    def action_stay(self) -> None:
        self.dismiss(False)
