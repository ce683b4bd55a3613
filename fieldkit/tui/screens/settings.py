"""Settings: who this laptop is, the trust store in force, the back office, the pinned host keys."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Header, Static

from fieldkit.audit.identity import load_profile
from fieldkit.bundles import trustops
from fieldkit.config import config_path
from fieldkit.errors import FieldkitError
from fieldkit.fsutil import read_regular_file
from fieldkit.tui.actions import bindings_for, key_bar, navigation_line
from fieldkit.tui.outside_text import escape, plain
from fieldkit.tui.screens.base import FieldkitScreen
from fieldkit.tui.screens.dialogs import PromptScreen


class SettingsScreen(FieldkitScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("settings")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(navigation_line("settings"), classes="nav")
        with VerticalScroll(id="settings-body"):
            yield Static("", id="settings-text")
        yield Static(key_bar("settings"), classes="keybar")

    def on_screen_resume(self) -> None:
        self.load()

    @work(exclusive=True, group="settings", thread=True)
    def load(self) -> None:
        self.app.call_from_thread(self.query_one("#settings-text", Static).update, self._describe())

    def _describe(self) -> Group:
        context = self.fk.context
        bench = context.service
        lines = ["[b]Identity[/b]"]
        if context.audit.has_identity:
            try:
                profile = load_profile()
                lines.append(
                    f"  laptop {profile.laptop_id} · technician {profile.technician.name} ({profile.technician.id})"
                    + (f" · site {profile.site}" if profile.site else "")
                )
            except FieldkitError as exc:
                lines.append(f"  unreadable: {exc.one_line()}")
            lines.append(
                "  audit trail " + ("unlocked" if context.audit.unlocked else "LOCKED: updates are not recorded")
            )
        else:
            lines.append("  none: create it with `fieldkit identity init` (updates are not audited without it)")
        lines += ["", "[b]Trust store[/b]", f"  {bench.trust_store}"]
        try:
            body = bench.trust_store_body()
            lines.append(
                f"  version {body.version} · {len(body.keys)} keys · {len(body.x509_roots)} X.509 roots · "
                f"{len(body.revoked_key_ids)} revoked"
            )
            for key in body.keys:
                lines.append(f"    {key.name}: {', '.join(key.roles)}")
        except FieldkitError as exc:
            lines.append(f"  CANNOT BE OPENED: {exc.one_line()}")
        lines += [
            "  i: install a newer trust store from a file (it must be signed by the current roots)",
            "",
            "[b]Back office[/b]",
            f"  {context.audit.backoffice_url()}",
            "",
            "[b]Files[/b]",
            f"  settings {config_path()} · bundles {bench.bundles_dir}",
            f"  health: stable {bench.settings.health_stable_s:g} s within {bench.settings.health_timeout_s:g} s",
            "",
            "[b]Known hosts[/b] (pinned SSH host keys)",
        ]
        hosts = bench.known_hosts_file
        pinned = [line.split()[:2] for line in hosts.read_text().splitlines() if line.strip()] if hosts.exists() else []
        lines += [f"  {host} {kind}" for host, kind in pinned] or ["  none yet"]
        return Group(*(_settings_line(line) for line in lines))

    def action_import_trust_store(self) -> None:
        self.app.push_screen(PromptScreen("Trust store update file (path)", "trust-store-v3.json"), self._import)

    def _import(self, path: str | None) -> None:
        if path:
            self.install(Path(path).expanduser())

    # A group of its own: the screen's reload (group "settings", exclusive), started as the prompt closes,
    # must not cancel the install before it runs (`i` seemed to do nothing).
    @work(exclusive=True, group="trust-install", thread=True)
    def install(self, path: Path) -> None:
        bench = self.fk.context.service
        try:
            content = read_regular_file(path, bench.settings.limits.max_trust_store_bytes)
            store = trustops.install_update(bench.trust_store, content, bench.state, bench.settings.limits)
        except (OSError, FieldkitError) as exc:
            message = exc.one_line() if isinstance(exc, FieldkitError) else f"cannot read {path}: {exc.strerror}"
            self.app.call_from_thread(self.notify, escape(f"trust store not installed: {message}"), severity="error")
            return
        self.fk.context.audit.record("trust.update", note=f"trust store version {store.version} installed from {path}")
        self.app.call_from_thread(self.notify, f"trust store version {store.version} installed")
        self.app.call_from_thread(self.query_one("#settings-text", Static).update, self._describe())


def _settings_line(line: str) -> Text | Padding:
    """Section titles are markup; every other line holds names and paths from files, shown as plain text.

    An indented line that wraps keeps its indent (at 80 columns a long path or identity line wraps), so
    what belongs to which section stays readable.
    """
    if line.startswith("[b]"):
        return Text.from_markup(line)
    body = line.lstrip(" ")
    return Padding(plain(body), (0, 0, 0, len(line) - len(body)))
