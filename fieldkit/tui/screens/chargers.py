"""Chargers: what discovery found, with an eligibility badge for the chosen bundle and a detail pane."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Header, Static

from fieldkit.domain import ChargerIdentity
from fieldkit.errors import FieldkitError
from fieldkit.tui.actions import bindings_for, key_bar, navigation_line
from fieldkit.tui.messages import ChargerFound, ChargerUnreachable, DiscoveryFinished
from fieldkit.tui.outside_text import escape, plain
from fieldkit.tui.screens.base import FieldkitScreen
from fieldkit.tui.screens.dialogs import PromptScreen
from fieldkit.tui.widgets.fitted_table import FittedTable

if TYPE_CHECKING:
    from fieldkit.tui.app import FieldkitApp

SERIAL_PREFIXES = ("rfc2217://", "socket://", "/dev/", "COM", "serial:")
LOCAL_PORT_PREFIXES = ("/dev/", "COM")
# Most important first: the columns to KEEP are always whole; the others give way in reverse order at 80
# columns (vendor, hardware revision and the whole address are in the detail pane).
COLUMNS = ("sel", "serial", "model", "version", "bundle", "connectors", "vendor", "address", "via")
KEEP = ("sel", "serial", "model", "version", "bundle")


def eligibility(app: FieldkitApp, identity: ChargerIdentity) -> str:
    bundle = app.selected_bundle
    if bundle is None:
        return "-"
    if not bundle.valid:
        return "bundle invalid"
    if not bundle.compatible_with(identity):
        return "not for this model"
    if identity.transaction_active:
        return "vehicle charging"
    if identity.unknown_safety_facts:
        return "confirm unknowns"  # preflight names them; unknown is never taken as safe
    return "eligible"


def _or_unknown(value: object) -> str:
    return "unknown" if value is None else str(value)


def connectors_of(identity: ChargerIdentity) -> str:
    """OCPP statuses, shortened when all connectors agree ("2x Available")."""
    statuses = identity.connector_statuses
    if not statuses:
        return "Charging" if identity.transaction_active else "unknown"
    if len(set(statuses)) == 1:
        return f"{len(statuses)}x {statuses[0]}"
    return ", ".join(statuses)


def _link_of(address: str) -> str:
    """How the laptop reaches a charger: an address's scheme, or ssh for a bare host[:port]."""
    return address.split("://", 1)[0] if "://" in address else "ssh"


def _shown_address(address: str) -> str:
    return address.removeprefix("ssh://")


def outcome_of(error: FieldkitError) -> str:
    """What went wrong, in the technician's words (never an exception's class name)."""
    words = {
        "HostUnreachableError": "unreachable",
        "AuthenticationFailedError": "login refused",
        "HostKeyUnknownError": "host key not pinned",
        "HostKeyChangedError": "HOST KEY CHANGED",
        "LinkLostError": "link lost",
        "CommandTimeoutError": "no answer",
        "DeviceRefusedError": "charger refused",
        "UsageError": "bad address",
    }
    return next((words[kind.__name__] for kind in type(error).__mro__ if kind.__name__ in words), "problem")


class ChargersScreen(FieldkitScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("chargers")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(navigation_line("chargers"), classes="nav")
        with Horizontal(id="chargers-body"):
            yield FittedTable(COLUMNS, KEEP, id="chargers-table")
            with VerticalScroll(id="charger-detail", classes="detail"):
                yield Static("Discovering chargers...", id="charger-detail-text")
        yield Static("", id="chargers-status", classes="status")
        yield Static(key_bar("chargers"), classes="keybar")

    def on_mount(self) -> None:
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self._redraw_badges()

    # -- discovery ------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.query_one("#chargers-status", Static).update("discovering...")
        self.discover_all(list(self.fk.context.targets))

    @work(exclusive=True, group="discovery")
    async def discover_all(self, targets: list[str]) -> None:
        context = self.fk.context
        bench = context.service
        if context.mdns:
            from fieldkit.discovery.mdns import browse

            try:
                announced = await asyncio.to_thread(browse)
                targets = [*targets, *(f"{c.host}:{c.port}" for c in announced)]
            except FieldkitError as exc:
                self.post_message(ChargerUnreachable("mDNS", "unreachable", exc.message))
        addresses = [t for t in targets if bench.reaches(t)]  # ssh://, and the schemes drivers add (sim://)
        for address in addresses:  # a row per target at once, in the order given, while it is identified
            self.fk.charger_problems.setdefault(address, "identifying...")
            self._put_row(address)
        # A local port (/dev/ttyACM0, COM3) is asked over mcumgr SMP; a device server's URL needs the protocol named.
        local_ports = [t for t in targets if t.startswith(LOCAL_PORT_PREFIXES) and not bench.reaches(t)]
        for target in (t for t in targets if t.startswith(SERIAL_PREFIXES) and not bench.reaches(t)):
            if target not in local_ports:
                self.post_message(
                    ChargerUnreachable(target, "no driver", "name the protocol: smp+serial:///PORT?baud=N")
                )
        scans = [t for t in targets if "://" not in t and not t.startswith(SERIAL_PREFIXES)]

        async def identify(address: str) -> None:
            try:
                identity = await bench.identify(address)
            except FieldkitError as exc:
                self.post_message(ChargerUnreachable(address, outcome_of(exc), exc.message))
                return
            self.post_message(ChargerFound(address, identity))

        await asyncio.gather(*(identify(a) for a in addresses))
        if local_ports:
            await self._probe_serial(local_ports)
        if scans:
            try:
                results = await bench.discover(scans, context.user)
            except FieldkitError as exc:
                results = []
                self.post_message(ChargerUnreachable(", ".join(scans), "bad target", exc.message))
            for result in results:
                address = result.candidate.ssh_address(context.user)
                if result.identity is not None:
                    self.post_message(ChargerFound(address, result.identity))
                else:
                    self.post_message(ChargerUnreachable(address, result.outcome, result.detail))
        self.post_message(DiscoveryFinished())

    async def _probe_serial(self, ports: list[str]) -> None:
        """Ask each local port over mcumgr SMP; a board that answers is listed at its smp+serial address."""
        from fieldkit.discovery.serial import discover_serial

        for probed in await discover_serial(ports):
            if probed.identity is not None:
                self.post_message(ChargerFound(probed.address, probed.identity))
            else:
                self.post_message(ChargerUnreachable(probed.address, probed.outcome, probed.detail))

    def on_charger_found(self, message: ChargerFound) -> None:
        self.fk.chargers[message.address] = message.identity
        self.fk.charger_problems.pop(message.address, None)
        self._put_row(message.address)

    def on_charger_unreachable(self, message: ChargerUnreachable) -> None:
        self.fk.charger_problems[message.address] = f"{message.outcome}: {message.detail}"
        self._put_row(message.address)

    def on_discovery_finished(self, _: DiscoveryFinished) -> None:
        # Counted from what is listed, not from this round alone: a refresh cut short by another, or chargers
        # found by an earlier round, must not make the line disagree with the table.
        found, problems = len(self.fk.chargers), len(self.fk.charger_problems)
        self.query_one("#chargers-status", Static).update(
            f"{found} charger(s) found, {problems} problem(s) · Space select · u update · r refresh"
        )
        self._show_detail()

    # -- table ----------------------------------------------------------------------

    def _cells(self, address: str) -> list[str]:
        app = self.fk
        selected = "[x]" if address in app.selected_chargers else "[ ]"
        identity = app.chargers.get(address)
        if identity is None:
            problem = app.charger_problems.get(address, "")
            # The outcome word only ("unreachable"): the whole problem is in the detail pane.
            outcome = problem.split(":", 1)[0][:24]
            return [selected, "-", "-", "-", outcome, "-", "-", _shown_address(address), _link_of(address)]
        versions = ", ".join(f"{c.version}" for c in identity.components.values())
        return [
            selected,
            identity.serial,
            identity.model,
            versions,
            eligibility(app, identity),
            connectors_of(identity),
            f"{identity.vendor} rev {identity.hardware_revision or 'unknown'}",
            _shown_address(address),
            _link_of(address),
        ]

    def _put_row(self, address: str) -> None:
        table = self.query_one(FittedTable)
        cells = [plain(cell) for cell in self._cells(address)]  # plain text: "[x]" and "[Errno 111]" are not markup
        if address in table.rows:
            for column, value in zip(COLUMNS, cells, strict=True):
                table.update_cell(address, column, value)
        else:
            table.add_row(*cells, key=address)
        table.fit()

    def _redraw_badges(self) -> None:
        for address in list(self.query_one(DataTable).rows):
            self._put_row(str(address.value))

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        address = self.highlighted_key()
        text = self.query_one("#charger-detail-text", Static)
        if address is None:
            text.update("No charger yet. Press a to add an SSH host or range, r to discover again.")
            return
        identity = self.fk.chargers.get(address)
        if identity is None:
            text.update(f"[b]{escape(address)}[/b]\n\n{escape(self.fk.charger_problems.get(address, ''))}")
            return
        # Everything here comes from the charger: escaped, so it can only ever be text.
        lines = [
            f"[b]{escape(identity.vendor)} {escape(identity.model)}[/b] rev {escape(identity.hardware_revision)}",
            f"serial {escape(identity.serial)}",
            *_provenance_lines(identity),
            f"anti-rollback floor {_or_unknown(identity.security_version_floor)} · meter {identity.meter_wh} Wh",
            "[yellow]vehicle charging[/yellow]"
            if identity.transaction_active
            else (
                "[yellow]vehicle charging: unknown[/yellow]"
                if identity.transaction_active is None
                else "no vehicle charging"
            ),
            "",
            "[b]components[/b]",
        ]
        for name, component in identity.components.items():
            pending = f", pending slot {component.pending_slot}" if component.pending_slot else ""
            lines.append(
                escape(
                    f"  {name}: {component.version} slot {component.active_slot} ({component.state}{pending})"
                    f" via {component.install_method or '?'}"
                )
            )
        text.update("\n".join(lines))
        self.load_history(identity.serial)

    @work(exclusive=True, group="detail", thread=True)
    def load_history(self, serial: str) -> None:
        entries = [e for e in self.fk.context.audit.entries() if (e.get("charger") or {}).get("serial") == serial]
        lines = ["", "[b]last audit entries[/b]"] + [
            escape(f"  {e['time']['wall_utc'][:16]} {e['action']} {e.get('status') or ''}") for e in entries[-5:]
        ]
        if not entries:
            lines.append("  none")
        self.app.call_from_thread(self._append_history, serial, "\n".join(lines))

    def _append_history(self, serial: str, history: str) -> None:
        address = self.highlighted_key()
        identity = self.fk.chargers.get(address or "")
        if identity is not None and identity.serial == serial:
            text = self.query_one("#charger-detail-text", Static)
            text.update(f"{text.content}{history}")

    # -- actions --------------------------------------------------------------------

    def action_toggle_selected(self) -> None:
        address = self.highlighted_key()
        if address is None:
            return
        if address not in self.fk.chargers:
            self.notify("only identified chargers can be updated", severity="warning")
            return
        self.fk.toggle_charger(address)
        self._put_row(address)

    def action_add_target(self) -> None:
        self.app.push_screen(
            PromptScreen(
                "Add: ssh://USER@HOST:PORT, a serial port (/dev/ttyACM0), smp+serial:///PORT?baud=N, HOST[:PORT], CIDR",
                "192.0.2.10",
            ),
            self._target_added,
        )

    def _target_added(self, target: str | None) -> None:
        if not target:
            return
        context = self.fk.context
        if target not in context.targets:
            context.targets.append(target)
        self.discover_all([target])


def _provenance_lines(identity: ChargerIdentity) -> list[str]:
    """Where the facts came from that the charger did not report itself (a file, a descriptor, the technician)."""
    by_source: dict[str, list[str]] = {}
    for fact, source in sorted(identity.fact_sources.items()):
        by_source.setdefault(source.value, []).append(fact.replace("_", " "))
    return [f"[dim]{escape(', '.join(facts))}: {escape(source)}[/dim]" for source, facts in by_source.items()]
