"""`fieldkit sim ...`: simulated chargers for the demo and the tests."""

from __future__ import annotations

from pathlib import Path

import click

from fieldkit.cli.common import console_out, print_json
from fieldkit.errors import UsageError


@click.group("sim")
def sim_group() -> None:
    """Create and inspect simulated chargers (state lives in a directory)."""


@sim_group.command("init")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", default="VQ-AC22", show_default=True, help="A simulated model (see `fieldkit sim models`).")
@click.option("--serial", help="Serial number [default: derived from the state directory name].")
@click.option("--hw-rev", "hw_rev", help="Hardware revision [default: the model's newest].")
def init(state_dir: Path, model: str, serial: str | None, hw_rev: str | None) -> None:
    """Create a factory-fresh simulated charger in DIR."""
    from fieldkit.simulator.catalog import model_named
    from fieldkit.simulator.device import SimulatedCharger

    try:
        spec = model_named(model)
    except KeyError as exc:
        raise UsageError(str(exc.args[0]), "see `fieldkit sim models`") from exc
    if hw_rev is not None and hw_rev not in spec.hardware_revisions:
        raise UsageError(f"{model} has hardware revisions {', '.join(spec.hardware_revisions)}, not {hw_rev}")
    charger = SimulatedCharger.create(state_dir, spec, serial or f"SIM-{state_dir.resolve().name.upper()}", hw_rev)
    identity = charger.identity
    console_out().print(
        f"created {identity['vendor']} {identity['model']} rev {identity['hardware_revision']} "
        f"serial {identity['serial']} in {state_dir}"
    )


@sim_group.command("models")
def models() -> None:
    """List the models the simulator can be."""
    from fieldkit.simulator.catalog import MODELS

    for model in MODELS:
        components = ", ".join(f"{c.name} ({c.install_method})" for c in model.components)
        console_out().print(
            f"{model.model:<10} {model.vendor:<8} revs {'/'.join(model.hardware_revisions):<6} "
            f"{model.transport:<11} runs {model.installed_version}: {components}"
        )


@sim_group.command("status")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def status(state_dir: Path, as_json: bool) -> None:
    """Running version per component, slots, committed or pending, boot count, connectors, meter."""
    from fieldkit.simulator.device import SimulatedCharger

    if not (state_dir / "state.json").exists():
        raise UsageError(f"no simulated charger in {state_dir}", "create one with `fieldkit sim init --state DIR`")
    report = SimulatedCharger(state_dir).status()
    if as_json:
        print_json(report)
        return
    out = console_out()
    identity = report["identity"]
    out.print(
        f"{identity['vendor']} {identity['model']} rev {identity['hardware_revision']} serial "
        f"{identity['serial']}: boot #{report['boot_count']} ({report['last_boot']['result']}), "
        f"anti-rollback floor {report['security_version_floor']}, meter {report['meter_wh']} Wh"
    )
    for name, component in report["components"].items():
        out.print(
            f"  {name}: {component['running_version']} from slot {component['active_slot']} ({component['state']})"
        )
    out.print("  connectors: " + ", ".join(f"{c['id']}={c['status']}" for c in report["connectors"]))
