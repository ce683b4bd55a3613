"""`fieldkit update` on a charger that is not a Linux box: an MCU reached through the in-memory driver.

The CLI holds no driver: the address's scheme (``sim://``, added through the
``fieldkit.drivers`` entry point as a vendor's driver would be) picks one in
the update service. The MCU cannot tell whether a vehicle is charging or its
anti-rollback floor: preflight refuses until the technician confirms both,
and the confirmation is audited.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit.cli.main import main
from fieldkit.demo import init_demo
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger

BUNDLE = "demo-amp-wb7-1.9.0-OCPP-SIGNED.fwbundle"


@pytest.fixture
def mcu(tmp_path: Path) -> tuple[str, Path, Path]:
    demo = tmp_path / "demo"
    init_demo(demo, 64 * 1024)
    state = tmp_path / "wb7"
    SimulatedCharger.create(state, model_named("AMP-WB7"), "SN-WB7")
    return f"sim://{state}?kind=mcu", demo / BUNDLE, state


def _update(address: str, bundle: Path, *extra: str) -> int:
    trust_store = bundle.parent / "trust-store.json"
    return main(["update", "--charger", address, "--bundle", str(bundle), "--trust-store", str(trust_store), *extra])


def test_an_mcu_is_refused_until_the_technician_confirms_what_it_cannot_tell(
    mcu: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    address, bundle, state = mcu
    assert _update(address, bundle, "--yes") == 13
    captured = capsys.readouterr()
    assert "unknown-transaction" in captured.out and "whether a vehicle is charging" in captured.err
    assert SimulatedCharger(state).status()["components"]["app"]["running_version"] == "1.8.0"


def test_an_mcu_updates_through_the_cli_once_the_unknowns_are_confirmed(
    mcu: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    address, bundle, state = mcu
    confirmations = ["--confirm-unknown", "transaction", "--confirm-unknown", "security_version_floor"]
    assert _update(address, bundle, *confirmations, "--yes") == 0, capsys.readouterr().err
    assert "Committed" in capsys.readouterr().out
    app = SimulatedCharger(state).status()["components"]["app"]
    assert (app["running_version"], app["state"]) == ("1.9.0", "committed")


def test_an_address_no_driver_reaches_is_one_line_naming_the_schemes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b.fwbundle"
    bundle.write_bytes(b"x")
    assert _update("acme://charger-7", bundle) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ssh://" in err and "sim://" in err
