"""Each screen of the TUI, driven with Pilot against simulated chargers and the demo bundle library."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown

from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.smp_server import PtyLine
from fieldkit.tui.app import FieldkitApp
from fieldkit.tui.screens.dialogs import HelpScreen, ResumeOfferScreen, help_markdown
from fieldkit.tui.widgets.job_panel import JobPanel
from fieldkit.updates.engine import JobCancelledError
from fieldkit.updates.service import Confirmations, UpdateService
from tests.support.backoffice import free_port
from tests.support.smp import serving
from tests.tui.conftest import TuiSite, tui_site
from tests.tui.pilot import discovered, drawn_lines, highlight_row, table_rows, until


def test_chargers_are_listed_with_details_and_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    chargers: list[tuple[str, str, tuple[str, ...]]] = [("VQ-AC22", "SN-LIST-1", ()), ("VQ-DC150", "SN-LIST-2", ())]
    with tui_site(tmp_path, monkeypatch, demo_library, chargers) as site:
        closed = f"ssh://root@127.0.0.1:{free_port()}"
        app = site.app([*(s.address for s in site.sims), closed])

        async def look() -> tuple[list[list[str]], str, list[list[str]]]:
            async with app.run_test(size=(120, 40)) as pilot:
                await discovered(pilot, 3)
                await highlight_row(pilot, "#chargers-table", "SN-LIST-2")
                await until(pilot, lambda: "last audit entries" in _detail(app), what="detail history")
                detail = _detail(app)
                before = table_rows(app, "#chargers-table")
                await pilot.press("space")  # select SN-LIST-2
                await pilot.press("a")
                await pilot.press(*"rfc2217://10.0.0.9:4001", "enter")
                await until(pilot, lambda: any("rfc2217" in r[7] for r in table_rows(app, "#chargers-table")))
                await highlight_row(pilot, "#chargers-table", closed.removeprefix("ssh://"))
                await until(pilot, lambda: "cannot reach" in _detail(app), what="the problem in the detail pane")
                problem_detail = _detail(app)
                await highlight_row(pilot, "#chargers-table", "rfc2217://")
                await until(pilot, lambda: "no driver" in _detail(app), what="the serial problem in the detail pane")
                return before, detail + problem_detail + _detail(app), table_rows(app, "#chargers-table")

        before, detail, after = asyncio.run(look())
        by_serial = {row[1]: row for row in before}
        assert by_serial["SN-LIST-1"][1:4] == ["SN-LIST-1", "VQ-AC22", "2.3.0"]
        assert by_serial["SN-LIST-1"][5:7] == ["2x Available", "Voltiq rev C"]
        assert by_serial["SN-LIST-2"][3] == "4.1.0, 4.1.0"
        problem = next(r for r in before if r[7] == closed.removeprefix("ssh://"))
        assert problem[1] == "-"
        assert problem[4] == "unreachable", "the outcome in a word in the table; the whole problem in the detail"
        assert "meter: 4.1.0 slot A (committed) via script" in detail
        assert "rootfs: 4.1.0 slot A (committed) via rauc" in detail
        assert app.selected_chargers == [site.sims[1].address]
        serial_row = next(r for r in after if "rfc2217" in r[7])
        assert serial_row[4] == "no driver"
        assert "no driver: name the protocol: smp+serial:///PORT?baud=N" in detail


def _detail(app: FieldkitApp) -> str:
    return str(app.screen.query_one("#charger-detail-text").render())


def test_bundles_show_verdicts_notes_and_refuse_an_invalid_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        app = site.app([])

        async def browse() -> tuple[list[list[str]], str, list[str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.press("2")
                await until(pilot, lambda: bool(app.bundles), what="bundles")
                await highlight_row(pilot, "#bundles-table", "EXPIRED")
                await pilot.press("enter")
                assert app.selected_bundle is None, "an expired bundle cannot be chosen"
                await highlight_row(pilot, "#bundles-table", "METROLOGY")
                notes = app.screen.query_one("#bundle-notes", Markdown).source
                await pilot.press("enter")
                await pilot.pause()
                return table_rows(app, "#bundles-table"), notes, drawn_lines(app, "#bundles-table")

        rows, notes, drawn = asyncio.run(browse())
        # The mark of the chosen bundle was set in its cell but drawn in a column sized when no bundle was chosen.
        marked = [line for line in drawn if "->" in line]
        assert len(marked) == 1 and "demo-vq-dc150-4.2.0-meter-METROLOGY.fwbundle" in marked[0], drawn
        verdicts = _verdicts(rows)
        assert verdicts["demo-vq-ac22-2.4.0.fwbundle"] == "valid"
        assert verdicts["demo-vq-ac22-2.2.0-EXPIRED.fwbundle"] == "expired"
        assert verdicts["demo-vq-dc150-4.3.0-meter-UNAPPROVED.fwbundle"] == "metrology-signatu…"
        assert "**meter** 4.2.0 via script over ssh (metrology-relevant)" in notes
        assert "DEMO release for the simulated VQ-DC150" in notes
        assert app.selected_bundle is not None
        assert app.selected_bundle.path.name == "demo-vq-dc150-4.2.0-meter-METROLOGY.fwbundle"


def _verdicts(rows: list[list[str]]) -> dict[str, str]:
    """Bundle file name -> the verdict column, from the bundles table's rows."""
    return {row[2]: row[1] for row in rows}


def test_the_library_judges_bundles_for_the_chargers_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    """DOWNGRADE and OTHER-MODEL bundles showed "valid": valid as such, but for none of the chargers here."""
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-LIB-1", ())]) as site:
        app = site.app()

        async def browse() -> tuple[list[list[str]], str]:
            async with app.run_test(size=(120, 40)) as pilot:
                await discovered(pilot, 1)
                await pilot.press("2")
                await until(pilot, lambda: "charger(s) found" in str(app.screen.query_one("#bundles-status").render()))
                return table_rows(app, "#bundles-table"), str(app.screen.query_one("#bundles-status").render())

        rows, status = asyncio.run(browse())
    verdicts = _verdicts(rows)
    assert (verdicts["demo-vq-ac22-2.4.0.fwbundle"], verdicts["demo-vq-ac22-1.9.0-DOWNGRADE.fwbundle"]) == (
        "valid", "downgrade")  # fmt: skip
    assert verdicts["demo-vq-ac11-3.0.0-OTHER-MODEL.fwbundle"] == "wrong-model"
    assert "1 valid for the 1 charger(s) found" in status


def test_a_bundle_for_one_charger_here_is_judged_by_that_charger() -> None:
    """Four other models made a downgrade for the one VQ-AC22 read "wrong-model"."""
    from fieldkit.tui.screens.bundles import library_verdict

    assert library_verdict(["wrong-model", "wrong-model", "downgrade", "wrong-model"]) == "downgrade"
    assert library_verdict(["wrong-model", "valid", "downgrade"]) == "valid"
    assert library_verdict(["wrong-model", "wrong-model"]) == "wrong-model"
    assert library_verdict(["expired", "expired"]) == "expired"


def test_importing_a_bundle_verifies_it_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        library = tmp_path / "library"
        library.mkdir()
        app = site.app([])
        app.context.service.bundles_dir = library

        async def import_two() -> list[list[str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.press("2", "i")
                await pilot.press(*str(demo_library / "demo-vq-ac22-2.2.0-EXPIRED.fwbundle"), "enter")
                await pilot.pause(0.5)
                await pilot.press("i")
                await pilot.press(*str(demo_library / "demo-vq-ac22-2.4.0.fwbundle"), "enter")
                await until(pilot, lambda: len(app.bundles) == 1, what="the import")
                return table_rows(app, "#bundles-table")

        rows = asyncio.run(import_two())
        assert [r[2] for r in rows] == ["demo-vq-ac22-2.4.0.fwbundle"]
        assert sorted(p.name for p in library.iterdir()) == ["demo-vq-ac22-2.4.0.fwbundle"]


def _interrupted_job(site: TuiSite) -> None:
    """A job cancelled mid-transfer, as a closed laptop would leave it."""
    sim = site.sims[0]
    bench = UpdateService(site.settings, site.demo / "trust-store.json", site.demo, site.key, accept_new_host_key=True)
    bundle = site.demo / "demo-vq-ac22-2.4.0.fwbundle"

    async def start_and_cancel() -> None:
        job = await bench.start(sim.address, bundle, Confirmations(), lambda action, **fields: None, None)
        async for event in job.run():
            if event.bytes_done > 0:
                job.cancel()

    with pytest.raises(JobCancelledError):
        asyncio.run(start_and_cancel())
    sim.server.faults.rate_bytes_per_s = None


def test_an_interrupted_job_is_offered_at_start_up_and_resumed_from_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-REC-1", ("rate:65536",))]) as site:
        _interrupted_job(site)
        app = site.app()

        async def recover() -> tuple[list[list[str]], str]:
            async with app.run_test(size=(120, 40)) as pilot:
                await until(pilot, lambda: isinstance(app.screen, ResumeOfferScreen), what="the resume offer")
                await pilot.press("enter")
                await until(pilot, lambda: app.current_mode == "recovery", what="recovery")
                await until(pilot, lambda: bool(table_rows(app, "#recovery-table")), what="the job list")
                rows = table_rows(app, "#recovery-table")
                await pilot.press("enter")
                await until(pilot, lambda: bool(app.screen.query(JobPanel)), what="the resumed job")
                await until(pilot, lambda: app.screen.query_one(JobPanel).state == "Committed", timeout_s=60)
                return rows, str(app.screen.query_one(JobPanel).query_one(".job-result").render())

        rows, result = asyncio.run(recover())
        assert rows[0][:2] == ["job", "SN-REC-1"]
        assert rows[0][4] == site.sims[0].address.removeprefix("ssh://")
        assert rows[0][2] in ("Downloading", "Downloaded"), "stopped before anything was installed"
        assert "Committed" in result
        assert SimulatedCharger(site.sims[0].state).status()["components"]["rootfs"]["running_version"] == "2.4.0"
        assert "Resumed" in [e.get("status") for e in app.context.audit.entries()]


def test_audit_lists_filters_and_verifies_the_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        app = site.app([])
        app.context.audit.unlock_from_environment()
        for serial in ("SN-AUD-1", "SN-AUD-2"):
            app.context.audit.record("rollback", status="RolledBack", note=f"test {serial}", charger=_ref(serial))

        notes: list[str] = []
        app.notify = lambda message, **_: notes.append(str(message))  # type: ignore[method-assign]

        def status_line() -> str:
            return str(app.screen.query_one("#audit-sync").render())

        async def audit() -> tuple[list[list[str]], list[list[str]], str, str]:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.press("5")
                await until(pilot, lambda: len(table_rows(app, "#audit-table")) == 2, what="entries")
                everything = table_rows(app, "#audit-table")
                status = status_line()
                await pilot.press("slash", *"aud-2", "enter")
                filtered = table_rows(app, "#audit-table")
                await pilot.press("v")
                await until(pilot, lambda: any("chain" in n for n in notes), what="the chain verdict")
                await until(pilot, lambda: "chain intact" in status_line(), what="the verdict in the status line")
                verified = status_line()
                await pilot.press("slash", *"zz", "escape", "1")  # Esc leaves the filter: "1" is a key again
                await until(pilot, lambda: app.current_mode == "chargers", what="Esc to leave the filter")
                return everything, filtered, status, verified

        everything, filtered, status, verified = asyncio.run(audit())
        assert "not checked" in status and "chain intact: 2 entries" in verified
        assert [r[3] for r in everything] == ["SN-AUD-2", "SN-AUD-1"]  # newest first
        assert [r[3] for r in filtered] == ["SN-AUD-2"]
        assert "2 entries · 2 pending" in status
        assert "not enrolled" in status
        assert any("intact: 2 entries" in n for n in notes)


def _ref(serial: str) -> object:
    from fieldkit.audit.entry import ChargerRef

    return ChargerRef(vendor="Voltiq", model="VQ-AC22", hardware_revision="C", serial=serial, address="ssh://x")


def test_settings_show_identity_trust_store_and_known_hosts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-SET-1", ())]) as site:
        app = site.app()

        async def settings() -> list[str]:
            async with app.run_test(size=(80, 24)) as pilot:
                await discovered(pilot, 1)  # pins the charger's host key
                await pilot.press("6")
                await until(pilot, lambda: any("Known hosts" in line for line in drawn_lines(app, "#settings-text")))
                return drawn_lines(app, "#settings-text")

        drawn = asyncio.run(settings())
        text = " ".join(line.strip() for line in drawn)  # the words, however the lines wrap at 80 columns
        # Lines that wrap keep their section's indent; only section titles start at the left edge.
        titles = ("Identity", "Trust store", "Back office", "Files", "Known hosts")
        flush_left = [line for line in drawn if line.strip() and not line.startswith(" ")]
        assert all(line.startswith(titles) for line in flush_left), flush_left
        assert any(line.startswith("  ") and "Depot 4" in line for line in drawn), "the identity line wraps at 80"
        assert "technician Tess Technician (T-7) · site Depot 4" in text
        assert "audit trail unlocked" in text
        assert "version 1 · 3 keys" in text
        assert f"[127.0.0.1]:{site.sims[0].server.port} ssh-ed25519" in text


def test_help_lists_every_action_and_the_palette_finds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        app = site.app([])

        async def helped() -> tuple[bool, str]:
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.press("question_mark")
                opened = isinstance(app.screen, HelpScreen)
                await pilot.press("escape")
                await pilot.press("ctrl+p")
                await pilot.press(*"bundles", "enter")
                await until(pilot, lambda: app.current_mode == "bundles", what="the palette's action")
                mode = app.current_mode
                await pilot.press("ctrl+p")  # an action of another screen: it opens that screen and runs there
                await pilot.press(*"verify chain", "enter")
                await until(pilot, lambda: app.current_mode == "audit" and any("chain" in n for n in notes))
                system_quits.extend(c.title for c in app.get_system_commands(app.screen) if c.title == "Quit")
                return opened, mode

        notes: list[str] = []
        system_quits: list[str] = []
        app.notify = lambda message, **_: notes.append(str(message))  # type: ignore[method-assign]
        opened, mode = asyncio.run(helped())
        assert opened
        assert mode == "bundles"
        assert not system_quits, "one Quit in the palette: ours, which asks while updates run"
        text = help_markdown()
        for key, title in (("p", "Preflight"), ("c", "Cancel"), ("s", "Sync now"), ("b", "Roll back")):
            assert f"| {key} | {title}:" in text


def test_sync_now_delivers_the_trail_to_a_real_back_office(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    import os
    import subprocess
    import sys

    from fieldkit.audit.identity import identity_dir
    from tests.support.backoffice import BackofficeProcess

    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        db = f"sqlite:///{tmp_path / 'bo.db'}"
        backoffice = BackofficeProcess(db, None, dict(os.environ))
        backoffice.start()
        try:
            fieldkit = str(Path(sys.executable).with_name("fieldkit"))
            enroll = [fieldkit, "backoffice", "enroll-laptop", "--db", db, "--name", "tui-test"]
            enroll += ["--public-key", str(identity_dir() / "laptop.pub"), "--url", backoffice.url]
            enroll += ["--out", str(identity_dir() / "backoffice-credential.json")]
            subprocess.run(enroll, check=True, capture_output=True)
            app = site.app([])
            app.context.audit.unlock_from_environment()
            app.context.audit.record("rollback", status="RolledBack", note="to deliver", charger=_ref("SN-SYNC"))
            notes: list[str] = []
            app.notify = lambda message, **_: notes.append(str(message))  # type: ignore[method-assign]

            async def sync() -> str:
                async with app.run_test(size=(120, 40)) as pilot:
                    await pilot.press("5")
                    await until(pilot, lambda: "1 pending" in str(app.screen.query_one("#audit-sync").render()))
                    await pilot.press("s")
                    await until(pilot, lambda: any(n.startswith("synced") for n in notes), what="the sync")
                    await until(pilot, lambda: "0 pending" in str(app.screen.query_one("#audit-sync").render()))
                    return str(app.screen.query_one("#audit-sync").render())

            status = asyncio.run(sync())
        finally:
            backoffice.stop()
        assert notes.count("synced: 1 new entries stored; 0 pending") == 1, notes  # once, not twice
        assert f"back office {backoffice.url} (reachable)" in status


def test_markup_from_a_charger_is_shown_as_text_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    hostile = "[@click=app.quit]EVIL[/] [b red]SN\x1b]0;pwned\x07"  # markup, and a terminal title change
    shown = "[@click=app.quit]EVIL[/] [b red]SN\\x1b]0;pwned\\x07"  # as text, its controls escaped
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-HOSTILE", ())]) as site:
        charger = SimulatedCharger(site.sims[0].state)
        charger.identity["serial"] = hostile
        charger.save()
        app = site.app()

        async def look() -> tuple[list[list[str]], str, bool]:
            async with app.run_test(size=(120, 40)) as pilot:
                await discovered(pilot, 1)
                await until(pilot, lambda: shown in _detail(app), what="the detail pane")
                await pilot.click("#charger-detail-text")
                return table_rows(app, "#chargers-table"), _detail(app), app.is_running

        rows, detail, running = asyncio.run(look())
        assert rows[0][1] == shown
        assert f"serial {shown}" in detail and "\x1b" not in detail
        assert running, "a click on the text must not run an action the charger named"


def test_a_local_serial_port_is_asked_over_smp_and_its_board_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    state = tmp_path / "wb7"
    SimulatedCharger.create(state, model_named("AMP-WB7"), "SN-SERIAL-1")
    with serving(state, "pty") as line, tui_site(tmp_path, monkeypatch, demo_library, []) as site:
        assert isinstance(line, PtyLine)
        app = site.app([line.path])

        async def look() -> list[list[str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                await discovered(pilot, 1)
                await until(pilot, lambda: any(r[1] == "SN-SERIAL-1" for r in table_rows(app, "#chargers-table")))
                return table_rows(app, "#chargers-table")

        rows = asyncio.run(look())
    board = next(r for r in rows if r[1] == "SN-SERIAL-1")
    assert (board[2], board[3], board[6]) == ("AMP-WB7", "1.8.0", "Ampero rev r2")
    assert board[7].startswith(f"smp+serial://{line.path}"), "listed at the address an update takes"
    assert board[8] == "smp+serial"


def test_settings_i_installs_a_newer_trust_store_and_names_what_is_wrong_with_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    """`i` on Settings did nothing at all, for a valid store and a bad path alike."""
    import shutil

    from fieldkit.bundles.demo_keys import demo_private_key
    from fieldkit.bundles.truststore import build_store, load_trust_store
    from fieldkit.config import Limits
    from tests.support.bundle_lab import NOW

    library = tmp_path / "library"
    shutil.copytree(demo_library, library)  # the shared library's store must stay as it is
    body = load_trust_store(library / "trust-store.json", Limits(), NOW).body
    newer = tmp_path / "newer-store.json"
    newer.write_bytes(build_store(body.model_copy(update={"version": body.version + 1}),
                                  [demo_private_key("demo-trust-root")]))  # fmt: skip
    with tui_site(tmp_path, monkeypatch, library, []) as site:
        app = site.app([])
        notes: list[str] = []
        app.notify = lambda message, **_: notes.append(str(message))  # type: ignore[method-assign]

        async def install(pilot: Pilot[str | None], path: str) -> None:
            notes.clear()
            await pilot.press("i")
            await until(pilot, lambda: bool(app.screen.query("Input")), what="the prompt")
            await pilot.press(*path, "enter")
            await until(pilot, lambda: any("trust store" in n for n in notes), what="a notification")

        async def both() -> tuple[list[str], list[str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.press("6")
                await install(pilot, str(tmp_path / "no-such-store.json"))
                refused = list(notes)
                await install(pilot, str(newer))
                return refused, list(notes)

        refused, installed = asyncio.run(both())
        assert any("trust store not installed" in n and "no-such-store.json" in n for n in refused), refused
        assert f"trust store version {body.version + 1} installed" in installed, installed
    assert load_trust_store(library / "trust-store.json", Limits(), NOW).version == body.version + 1


def test_a_lost_trusted_state_is_said_at_start_as_the_cli_says_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    """The file behind the clock and trust-store rollback checks, damaged: the CLI warned, the TUI said nothing."""
    import shutil

    from fieldkit.bundles.clock import STATE_NAME
    from fieldkit.config import data_dir, default_trust_store_path

    with tui_site(tmp_path, monkeypatch, demo_library, []) as site:

        async def start(app: FieldkitApp) -> list[str]:
            async with app.run_test(size=(80, 24)) as pilot:
                await pilot.pause()
                return [f"{n.title}: {n.message}" for n in app._notifications]

        (data_dir() / STATE_NAME).parent.mkdir(parents=True, exist_ok=True)
        (data_dir() / STATE_NAME).write_text("{not json")
        setting_up = asyncio.run(start(site.app([])))  # no trust store of its own yet: nothing to lose
        shutil.copyfile(site.demo / "trust-store.json", default_trust_store_path())
        in_use = asyncio.run(start(site.app([])))
    assert not any("trusted state" in n for n in setting_up)
    warning = next(n for n in in_use if n.startswith("trusted state lost"))
    assert f"{STATE_NAME} is unreadable" in warning and "clock set back" in warning


def test_the_update_screen_says_which_choice_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    """With chargers selected and no bundle, it used to ask for chargers too ("choose a bundle and chargers")."""
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-MISSING-1", ())]) as site:
        app = site.app([s.address for s in site.sims])

        def status() -> str:
            """The Update screen's status line, or "" while another screen is shown."""
            found = app.screen.query("#update-status")
            return str(found.first().render()) if found else ""

        async def visit() -> tuple[str, str, list[str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.press("3")
                await until(pilot, lambda: status() != "", what="the Update screen's status")
                nothing_picked = status()
                await pilot.press("1")
                await discovered(pilot, 1)
                await pilot.press("space", "3")
                await until(pilot, lambda: bool(app.selected_chargers), what="the charger selected")
                await until(pilot, lambda: status() not in ("", nothing_picked), what="the status with a charger")
                chargers_picked = status()
                await pilot.press("p")
                return nothing_picked, chargers_picked, [n.message for n in app._notifications]

        nothing_picked, chargers_picked, notes = asyncio.run(visit())
        assert nothing_picked == "choose a bundle (2) and select chargers (1) first"
        assert chargers_picked == "choose a bundle (2) first"
        assert "choose a bundle (2) first" in notes
