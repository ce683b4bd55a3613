"""The full update flow through the TUI, keyboard only: to Committed, to RolledBack, and refusals."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from textual.pilot import Pilot

from fieldkit.simulator.device import SimulatedCharger
from fieldkit.tui.app import FieldkitApp
from fieldkit.tui.screens.update import UpdateScreen
from fieldkit.tui.widgets.job_panel import JobPanel
from tests.tui.conftest import tui_site
from tests.tui.pilot import discovered, highlight_row, table_rows, until

AC22_BUNDLE = "demo-vq-ac22-2.4.0.fwbundle"


async def _choose(pilot: object, app: FieldkitApp, bundle: str) -> None:
    await pilot.press("2")  # type: ignore[attr-defined]
    await until(pilot, lambda: bool(app.bundles), what="bundles")  # type: ignore[arg-type]
    await highlight_row(pilot, "#bundles-table", bundle)  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    assert app.selected_bundle is not None
    assert app.selected_bundle.path.name == bundle


async def _preflighted(pilot: Pilot[str | None], app: FieldkitApp, bundle: str) -> UpdateScreen:
    """Select the first discovered charger, choose ``bundle``, run preflight; return the update screen."""
    await discovered(pilot, 1)
    await pilot.press("space")
    await _choose(pilot, app, bundle)
    await pilot.press("3", "p")
    screen = app.screen
    assert isinstance(screen, UpdateScreen)
    await until(pilot, lambda: len(screen.plan) == len(app.selected_chargers), what="preflight")
    return screen


def _outcomes(panels: list[JobPanel]) -> list[tuple[str, str]]:
    """(state, result text) per job panel, read while the app still runs."""
    return [(p.state, str(p.query_one(".job-result").render())) for p in panels]


async def _update(app: FieldkitApp, bundle: str, serials: list[str] | None = None) -> list[tuple[str, str]]:
    """Select the first charger, choose ``bundle``, preflight, start, confirm; wait for every result."""
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _preflighted(pilot, app, bundle)
        await pilot.press("s")
        await pilot.pause()
        if serials:
            await pilot.click("#confirm-serials")
            await pilot.press(*" ".join(serials), "enter")
        else:
            await pilot.click("#confirm-yes")
        await until(pilot, lambda: bool(screen.query(JobPanel)), what="job panels")
        await until(
            pilot,
            lambda: all(p.state in ("Committed", "RolledBack", "stopped") for p in screen.query(JobPanel)),
            timeout_s=60,
            what="the update's end",
        )
        return _outcomes(list(screen.query(JobPanel)))


def test_an_update_runs_to_committed_and_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-TUI-1", ())]) as site:
        app = site.app()
        [(state, result)] = asyncio.run(_update(app, AC22_BUNDLE))
        assert state == "Committed"
        assert "Committed" in result
        assert "SN-TUI-1 runs rootfs 2.4.0" in result
        status = SimulatedCharger(site.sims[0].state).status()["components"]["rootfs"]
        assert (status["running_version"], status["state"]) == ("2.4.0", "committed")
        statuses = [e.get("status") for e in app.context.audit.entries() if e["action"] == "update.transition"]
        assert statuses[-1] == "Committed"


def test_an_image_that_never_becomes_healthy_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-TUI-2", ("never-available",))]) as site:
        [(state, result)] = asyncio.run(_update(site.app(), AC22_BUNDLE))
        assert state == "RolledBack"
        assert "Rolled back" in result
        assert "health check failed" in result
        status = SimulatedCharger(site.sims[0].state).status()["components"]["rootfs"]
        assert (status["running_version"], status["state"]) == ("2.3.0", "committed")


def test_a_metrology_bundle_needs_the_typed_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-DC150", "SN-DC-9", ())]) as site:
        app = site.app()

        async def wrong_then_right() -> list[tuple[str, str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                screen = await _preflighted(pilot, app, "demo-vq-dc150-4.2.0-meter-METROLOGY.fwbundle")
                metrology = [r for r in table_rows(app, "#preflight-table") if r[1] == "metrology"]
                assert [r[:3] for r in metrology] == [["SN-DC-9", "metrology", "[yellow]at confirm[/]"]]
                await pilot.press("s")
                await pilot.pause()
                await pilot.click("#confirm-serials")
                await pilot.press(*"SN-DC-1", "enter")
                assert "do not match" in str(app.screen.query_one("#confirm-problem").render())
                assert not screen.query(JobPanel)
                await pilot.press("backspace", "9", "enter")
                await until(pilot, lambda: bool(screen.query(JobPanel)), what="job panel")
                await until(pilot, lambda: screen.query_one(JobPanel).state == "Committed", timeout_s=60)
                return _outcomes(list(screen.query(JobPanel)))

        assert [state for state, _ in asyncio.run(wrong_then_right())] == ["Committed"]
        components = SimulatedCharger(site.sims[0].state).status()["components"]
        assert {n: c["running_version"] for n, c in components.items()} == {"rootfs": "4.2.0", "meter": "4.2.0"}


def test_preflight_refuses_a_charger_with_a_vehicle_charging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-TUI-3", ())]) as site:
        SimulatedCharger(site.sims[0].state).start_transaction(1)
        app = site.app()

        async def refused() -> list[list[str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                await discovered(pilot, 1)
                assert "Charging, Available" in table_rows(app, "#chargers-table")[0]
                await pilot.press("space")
                await _choose(pilot, app, AC22_BUNDLE)
                await pilot.press("3", "p")
                screen = app.screen
                await until(pilot, lambda: len(screen.plan) == 1, what="preflight")  # type: ignore[attr-defined]
                await pilot.press("s")
                await pilot.pause()
                assert app.screen is screen, "no confirmation is offered for a refused charger"
                return table_rows(app, "#preflight-table")

        rows = asyncio.run(refused())
        assert ["SN-TUI-3", "transaction", "[red]NO[/]", "a vehicle is charging: wait until the session ends"] in rows
        assert SimulatedCharger(site.sims[0].state).status()["components"]["rootfs"]["running_version"] == "2.3.0"


def test_a_vehicle_that_plugs_in_after_preflight_stops_the_start_and_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-TUI-4", ())]) as site:
        app = site.app()

        async def plugged_in_late() -> None:
            async with app.run_test(size=(120, 40)) as pilot:
                await _preflighted(pilot, app, AC22_BUNDLE)
                SimulatedCharger(site.sims[0].state).start_transaction(1)
                await pilot.press("s")
                await pilot.pause()
                await pilot.click("#confirm-yes")
                await until(
                    pilot,
                    lambda: any(e["action"] == "update.refused" for e in app.context.audit.entries()),
                    what="the refusal in the audit trail",
                )

        asyncio.run(plugged_in_late())
        [refusal] = [e for e in app.context.audit.entries() if e["action"] == "update.refused"]
        assert refusal["status"] == "Refused"
        assert "vehicle is charging" in refusal["error"]
        assert refusal["charger"]["serial"] == "SN-TUI-4"
        assert not [e for e in app.context.audit.entries() if e["action"] == "update.transition"]
        assert SimulatedCharger(site.sims[0].state).status()["components"]["rootfs"]["running_version"] == "2.3.0"


def test_what_a_charger_cannot_tell_is_confirmed_by_the_typed_serial_and_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    faults = ("unknown:fact=transaction",)
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-TUI-U", faults)]) as site:
        app = site.app()

        async def flow() -> tuple[str, list[list[str]]]:
            async with app.run_test(size=(120, 40)) as pilot:
                screen = await _preflighted(pilot, app, AC22_BUNDLE)
                rows = table_rows(app, "DataTable")
                await pilot.press("s")
                await until(pilot, lambda: bool(app.screen.query("#confirm-serials")), what="the confirmation")
                shown = [str(w.render()) for w in app.screen.query("Static")]
                assert any("cannot tell" in line and "vehicle is charging" in line for line in shown), shown
                await pilot.click("#confirm-yes")  # not enough: the serial must be typed
                await pilot.pause()
                assert app.screen.query("#confirm-serials"), "started without the typed confirmation"
                await pilot.click("#confirm-serials")
                await pilot.press(*"SN-TUI-U", "enter")
                await until(pilot, lambda: bool(screen.query(JobPanel)), what="job panels")
                await until(pilot, lambda: all(p.state == "Committed" for p in screen.query(JobPanel)), timeout_s=60)
                return screen.query_one(JobPanel).state, rows

        state, rows = asyncio.run(flow())
        assert ["SN-TUI-U", "unknown-transaction", "[yellow]at confirm[/]"] in [row[:3] for row in rows], rows
        assert state == "Committed"
        confirmed = [e for e in app.context.audit.entries() if e["action"] == "update.unknown-confirmed"]
        assert confirmed and "transaction" in confirmed[0]["note"]


async def _start_and_confirm(pilot: Pilot[str | None], app: FieldkitApp, screen: UpdateScreen) -> None:
    await pilot.press("s")
    await until(pilot, lambda: bool(app.screen.query("#confirm-yes")), what="the confirmation")
    await pilot.click("#confirm-yes")
    await until(pilot, lambda: bool(screen.query(JobPanel)), what="job panels")


def _ended(screen: UpdateScreen) -> bool:
    return bool(screen.query(JobPanel)) and all(
        p.state in ("Committed", "RolledBack", "stopped") for p in screen.query(JobPanel)
    )


def test_the_same_charger_updated_twice_in_one_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    """Panels were keyed by the charger's address: the second update of it killed the TUI (DuplicateIds)."""
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-TWICE", ("never-available",))]) as site:
        site.settings = dataclasses.replace(site.settings, health_timeout_s=2)  # both roll back: no need to wait
        app = site.app()

        async def twice() -> list[list[tuple[str, str]]]:
            outcomes = []
            async with app.run_test(size=(120, 40)) as pilot:
                screen = await _preflighted(pilot, app, AC22_BUNDLE)
                for _ in range(2):
                    await _start_and_confirm(pilot, app, screen)
                    await until(pilot, lambda: _ended(screen), timeout_s=60, what="the update's end")
                    outcomes.append(_outcomes(list(screen.query(JobPanel))))
                    await pilot.press("p")
                    await until(pilot, lambda: len(screen.plan) == 1, what="the second preflight")
                assert app.is_running
            return outcomes

        first, second = asyncio.run(twice())
    assert [state for state, _ in first] == ["RolledBack"]
    assert [state for state, _ in second] == ["RolledBack"], "one panel per update, the first one replaced"


def test_cancel_during_the_health_check_rolls_back_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_library: Path
) -> None:
    """`c` while the charger proves itself was ignored until the health check timed out."""
    with tui_site(tmp_path, monkeypatch, demo_library, [("VQ-AC22", "SN-CANCEL", ("never-available",))]) as site:
        app = site.app()

        async def cancel_in_health() -> tuple[list[tuple[str, str]], list[str]]:
            async with app.run_test(size=(120, 40)) as pilot:
                screen = await _preflighted(pilot, app, AC22_BUNDLE)
                await _start_and_confirm(pilot, app, screen)
                panel = screen.query_one(JobPanel)
                await until(pilot, lambda: panel.health_reading.startswith("connectors"), what="a health reading")
                shown = str(panel.query_one(".job-result").render())
                await pilot.press("c")
                await until(pilot, lambda: _ended(screen), timeout_s=60, what="the update's end")
                return _outcomes([panel]), [shown]

        [(state, result)], [during] = asyncio.run(cancel_in_health())
    assert "connectors Unavailable" in during and "gives up in" in during, "the live state is shown, not a claim"
    assert state == "RolledBack"
    assert "cancelled by the technician during the health check" in result
