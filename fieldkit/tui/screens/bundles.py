"""Bundles: the library in offline_bundles/, each with its verdict, signers, expiry, compatibility and notes."""

from __future__ import annotations

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
from fieldkit.updates.service import BundleSummary

if TYPE_CHECKING:
    pass

# Most important first: at 80 columns the last ones are cut.
COLUMNS = ("", "verdict", "bundle", "version", "expires")
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


class BundlesScreen(FieldkitScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings_for("bundles")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(navigation_line("bundles"), classes="nav")
        with Horizontal(id="bundles-body"):
            yield DataTable(id="bundles-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="bundle-detail", classes="detail"):
                yield Markdown("Verifying the bundle library...", id="bundle-notes")
        yield Static("", id="bundles-status", classes="status")
        yield Static(key_bar("bundles"), classes="keybar")

    def on_mount(self) -> None:
        self.set_columns(COLUMNS)
        self.action_reload()

    def action_reload(self) -> None:
        self.query_one("#bundles-status", Static).update(f"verifying {self.fk.context.service.bundles_dir} ...")
        self.load()

    @work(exclusive=True, group="bundles", thread=True)
    def load(self) -> None:
        try:
            bundles = self.fk.context.service.list_bundles()
        except FieldkitError as exc:
            self.app.call_from_thread(self.notify, escape(exc.one_line()), severity="error")
            bundles = []
        self.post_message(BundlesLoaded(bundles))

    def on_bundles_loaded(self, message: BundlesLoaded) -> None:
        self.fk.bundles = message.bundles
        table = self.query_one(DataTable)
        table.clear()
        for bundle in message.bundles:
            table.add_row(*(plain(cell) for cell in self._cells(bundle)), key=str(bundle.path))
        self.fit_columns()
        valid = sum(1 for b in message.bundles if b.valid)
        self.query_one("#bundles-status", Static).update(
            f"{len(message.bundles)} bundle(s), {valid} valid · Enter choose · i import · r reload"
        )
        self._show_detail()

    def _cells(self, bundle: BundleSummary) -> list[str]:
        chosen = self.fk.selected_bundle
        mark = "->" if chosen is not None and chosen.path == bundle.path else ""
        manifest = bundle.manifest
        verdict = bundle.code if len(bundle.code) <= VERDICT_WIDTH else bundle.code[: VERDICT_WIDTH - 1] + "…"
        return [
            mark,
            verdict,
            bundle.path.name,
            manifest.version if manifest else "-",
            f"{manifest.expires_at:%Y-%m-%d}" if manifest else "-",
        ]

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
        table = self.query_one(DataTable)
        for row_key in list(table.rows):
            for b in self.fk.bundles:
                if str(b.path) == row_key.value:
                    table.update_cell(row_key, "", plain(self._cells(b)[0]))
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
