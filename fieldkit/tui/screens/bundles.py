"""Bundles: the library in offline_bundles/, each with its verdict, signers, expiry, compatibility and notes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Header, Markdown, Static

from fieldkit.errors import FieldkitError
from fieldkit.tui.actions import bindings_for, key_bar, navigation_line
from fieldkit.tui.messages import BundlesLoaded
from fieldkit.tui.outside_text import escape, plain
from fieldkit.tui.screens.base import FieldkitScreen
from fieldkit.tui.screens.dialogs import PromptScreen
from fieldkit.tui.widgets.fitted_table import FittedTable
from fieldkit.updates.service import BundleSummary

if TYPE_CHECKING:
    pass

# Most important first: the columns to KEEP are always whole; the expiry gives way at 80 columns.
COLUMNS = ("", "verdict", "bundle", "version", "expires")
KEEP = ("", "verdict", "bundle", "version")
VERDICT_WIDTH = 18


def describe(bundle: BundleSummary) -> str:
    """The detail pane: what a technician checks before choosing a bundle, then its release notes."""
    verdict = "valid" if bundle.valid else f"REFUSED: {bundle.reason}"
    parts = [f"# {bundle.path.name}", f"**Verdict:** {verdict}"]
    manifest = bundle.manifest
    if manifest is not None:
        facts = [
            f"- **Signed by:** {', '.join(bundle.signers) or 'nobody trusted'}",
            f"- **Expires:** {manifest.expires_at:%Y-%m-%d} (security version {manifest.security_version})",
            "- **For:** "
            + "; ".join(f"{c.model} rev {', '.join(c.hardware_revisions)}" for c in manifest.compatibility),
        ]
        facts += [
            f"- **{c.name}** {c.version} via {c.ways_text}" + (" (metrology-relevant)" if c.metrology_relevant else "")
            for c in manifest.components_in_order()
        ]
        parts += ["\n".join(facts), "---", manifest.release_notes or "_no release notes_"]
    return "\n\n".join(parts)


def library_verdict(codes: list[str]) -> str:
    """One verdict for a bundle from its verdicts for each charger found.

    Valid for one of them is valid. Otherwise a charger of the bundle's own model says what matters: a
    downgrade for the one VQ-AC22 must not read "wrong-model" because four other chargers are other models.
    """
    if "valid" in codes:
        return "valid"
    own_model = [code for code in codes if code != "wrong-model"]
    return Counter(own_model or codes).most_common(1)[0][0]


class BundlesScreen(FieldkitScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("bundles")

    def __init__(self) -> None:
        super().__init__()
        self.fits: dict[str, str] = {}  # bundle path -> verdict for the chargers found
        self._judged_for: set[str] | None = None  # the chargers (addresses) those verdicts are for; None: not yet

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(navigation_line("bundles"), classes="nav")
        with Horizontal(id="bundles-body"):
            yield FittedTable(COLUMNS, KEEP, id="bundles-table")
            with VerticalScroll(id="bundle-detail", classes="detail"):
                yield Markdown("Verifying the bundle library...", id="bundle-notes")
        yield Static("", id="bundles-status", classes="status")
        yield Static(key_bar("bundles"), classes="keybar")

    def action_reload(self) -> None:
        self.query_one("#bundles-status", Static).update(f"verifying {self.fk.context.service.bundles_dir} ...")
        self.load()

    def on_screen_resume(self) -> None:
        # First show, or chargers found since the library was judged: (re)judge it for them.
        if self._judged_for is None or set(self.fk.chargers) != self._judged_for:
            self.action_reload()

    @work(exclusive=True, group="bundles", thread=True)
    def load(self) -> None:
        service = self.fk.context.service
        chargers = dict(self.fk.chargers)
        fits: dict[str, str] = {}
        try:
            bundles = service.list_bundles()
            # Valid as such is not enough: a downgrade, or a bundle for another model, suits none of the
            # chargers here, and the library says so (the charger's own facts decide, as at preflight).
            for bundle in bundles:
                if bundle.valid and chargers:
                    codes = [service.check_bundle(bundle.path, identity).code for identity in chargers.values()]
                    fits[str(bundle.path)] = library_verdict(codes)
        except FieldkitError as exc:
            self.app.call_from_thread(self.notify, escape(exc.one_line()), severity="error")
            bundles = []
        self._judged_for = set(chargers)
        self.post_message(BundlesLoaded(bundles, fits))

    def on_bundles_loaded(self, message: BundlesLoaded) -> None:
        self.fk.bundles = message.bundles
        self.fits = message.fits
        table = self.query_one(FittedTable)
        highlighted = self.highlighted_key()  # a reload keeps the technician's place in the list
        table.clear()
        for bundle in message.bundles:
            table.add_row(*(plain(cell) for cell in self._cells(bundle)), key=str(bundle.path))
        table.fit()
        keys = [str(b.path) for b in message.bundles]
        if highlighted in keys:
            table.move_cursor(row=keys.index(highlighted))
        valid = sum(1 for b in message.bundles if self._verdict(b) == "valid")
        judged = f"valid for the {len(self._judged_for)} charger(s) found" if self._judged_for else "valid"
        self.query_one("#bundles-status", Static).update(
            f"{len(message.bundles)} bundle(s), {valid} {judged} · Enter choose · i import · r reload"
        )
        self._show_detail()

    def _cells(self, bundle: BundleSummary) -> list[str]:
        chosen = self.fk.selected_bundle
        mark = "->" if chosen is not None and chosen.path == bundle.path else ""
        manifest = bundle.manifest
        code = self._verdict(bundle)
        verdict = code if len(code) <= VERDICT_WIDTH else code[: VERDICT_WIDTH - 1] + "…"
        return [
            mark,
            verdict,
            bundle.path.name,
            manifest.version if manifest else "-",
            f"{manifest.expires_at:%Y-%m-%d}" if manifest else "-",
        ]

    def _verdict(self, bundle: BundleSummary) -> str:
        """The bundle's own verdict, or, once chargers are found, what it is for them (downgrade, wrong-model)."""
        return self.fits.get(str(bundle.path), bundle.code)

    def _highlighted_bundle(self) -> BundleSummary | None:
        key = self.highlighted_key()
        return next((b for b in self.fk.bundles if str(b.path) == key), None)

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_choose_bundle()

    def _show_detail(self) -> None:
        bundle = self._highlighted_bundle()
        notes = self.query_one("#bundle-notes", Markdown)
        notes.update(describe(bundle) if bundle else f"No bundles in {self.fk.context.service.bundles_dir}.")

    def action_choose_bundle(self) -> None:
        bundle = self._highlighted_bundle()
        if bundle is None:
            return
        if not bundle.valid:
            self.notify(escape(f"{bundle.path.name} cannot be used: {bundle.reason}"), severity="error")
            return
        self.fk.selected_bundle = bundle
        table = self.query_one(FittedTable)
        for row_key in list(table.rows):
            for b in self.fk.bundles:
                if str(b.path) == row_key.value:
                    table.update_cell(row_key, "", plain(self._cells(b)[0]))
        table.fit()  # the mark column was sized while it was empty: it has to grow for "->" to be seen
        self.notify(escape(f"bundle for the update: {bundle.path.name}"))

    def action_import_bundle(self) -> None:
        self.app.push_screen(
            PromptScreen("Bundle file to import (path)", "/media/usb/vq-ac22-2.5.0.fwbundle"), self._import
        )

    def _import(self, path: str | None) -> None:
        if path:
            self.import_file(Path(path).expanduser())

    @work(exclusive=True, group="bundles", thread=True)
    def import_file(self, path: Path) -> None:
        try:
            if not path.is_file():
                raise FieldkitError(f"{path} is not a file", "give the path of a .fwbundle")
            summary = self.fk.context.service.import_bundle(path)
        except FieldkitError as exc:
            self.app.call_from_thread(self.notify, escape(exc.one_line()), severity="error", timeout=10)
            return
        self.app.call_from_thread(self.notify, escape(f"imported {summary.path.name}: {summary.reason}"))
        self.post_message(BundlesLoaded(self.fk.context.service.list_bundles()))
