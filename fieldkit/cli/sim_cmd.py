"""`fieldkit sim ...`: simulated chargers for the demo and the tests."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fieldkit.cli.common import EXISTING_FILE, FiniteFloatRange, console_out, print_json, require_free_port
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


@sim_group.command("ssh")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", default=2222, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--model", default="VQ-AC22", show_default=True, help="Model to create on first start.")
@click.option(
    "--authorized-key",
    "authorized_keys",
    multiple=True,
    type=EXISTING_FILE,
    help="OpenSSH public key allowed to log in (repeatable) [default: a key made in DIR].",
)
@click.option("--rate", type=click.IntRange(min=1), help="Link rate limit in bytes per second.")
@click.option("--fault", "faults", multiple=True, help="Fault spec (repeatable); the specs are listed above.")
@click.option("--mdns", is_flag=True, help="Announce the endpoint over mDNS (_ssh._tcp on 127.0.0.1).")
def ssh(
    state_dir: Path,
    port: int,
    model: str,
    authorized_keys: tuple[Path, ...],
    rate: int | None,
    faults: tuple[str, ...],
    mdns: bool,
) -> None:
    """Serve a simulated Linux charger over SSH on 127.0.0.1 until SIGTERM or SIGINT.

    Creates the charger in DIR on first start. Without --authorized-key, a
    client key pair is written to DIR/client_key(.pub) and is the one allowed.
    Fault specs: power-cut:byte=N, power-cut:phase=install|reboot|commit,
    corrupt:byte=N, hang:phase=P, hang:byte=N, link-drop:byte=N, rate:BYTES_PER_S,
    fail-install:component=C, never-available, flap-health.
    """
    import signal

    from fieldkit.simulator.catalog import model_named
    from fieldkit.simulator.device import SimulatedCharger
    from fieldkit.simulator.faults import FaultPlan
    from fieldkit.simulator.ssh_server import SimulatedSshCharger

    specs = [*faults, *([f"rate:{rate}"] if rate else [])]
    FaultPlan.parse(specs)  # refuse a bad spec before anything starts
    require_free_port("127.0.0.1", port)
    if not (state_dir / "state.json").exists():
        try:
            spec = model_named(model)
        except KeyError as exc:
            raise UsageError(str(exc.args[0]), "see `fieldkit sim models`") from exc
        SimulatedCharger.create(state_dir, spec, f"SIM-{state_dir.resolve().name.upper()}")  # boots once
    else:
        SimulatedCharger(state_dir).power_on()  # power is back: the bootloader runs, as on hardware
    keys = list(authorized_keys) or [_client_key(state_dir)]
    server = SimulatedSshCharger(state_dir, port, keys, specs)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    click.echo(f"ssh://root@127.0.0.1:{server.port}", nl=True)
    sys.stdout.flush()
    if not mdns:
        server.serve_forever()
        return
    from fieldkit.simulator.mdns import announced

    identity = SimulatedCharger(state_dir).identity
    with announced(f"{identity['model']}-{identity['serial']}", server.port, txt={"vendor": identity["vendor"]}):
        server.serve_forever()


def _client_key(state_dir: Path) -> Path:
    """A client key pair in the state directory, made once, for the demo to log in with."""
    from fieldkit.simulator.ssh_server import write_openssh_key

    public_path = state_dir / "client_key.pub"
    if not public_path.exists():
        public_path.write_bytes(write_openssh_key(state_dir / "client_key", "fieldkit-sim-client"))
    return public_path


@sim_group.command("serial")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--protocol", type=click.Choice(["smp"]), default="smp", show_default=True)
@click.option("--model", default="AMP-WB7", show_default=True, help="Model to create on first start.")
@click.option("--line", type=click.Choice(["pty", "socket"]), default="pty", show_default=True,
              help="A local pseudo-terminal (a USB-serial port) or a TCP port (a serial device server).")  # fmt: skip
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="For --line socket: 0 picks a free port.")  # fmt: skip
@click.option("--baud", type=click.IntRange(min=300), help="Pace the line as a UART at this rate [default: unpaced].")
@click.option("--buf-size", default=2048, show_default=True, type=click.IntRange(128, 65535),
              help="The board's SMP buffer size (MCUmgr parameters); Zephyr's default is 384.")  # fmt: skip
@click.option("--buf-count", default=4, show_default=True, type=click.IntRange(1, 64), help="Its number of buffers.")
@click.option("--turnaround-ms", default=5.0, show_default=True, type=FiniteFloatRange(0, 1000),
              help="The board's own time per request (decode, dispatch, encode).")  # fmt: skip
@click.option("--flash-rate", default=32 * 1024, show_default=True, type=click.IntRange(0),
              help="Bytes per second its flash takes, erase included (0: instant).")  # fmt: skip
@click.option("--fault", "faults", multiple=True, help="Fault spec (repeatable); see `fieldkit sim ssh --help`.")
def serial(
    state_dir: Path,
    protocol: str,
    model: str,
    line: str,
    port: int,
    baud: int | None,
    buf_size: int,
    buf_count: int,
    turnaround_ms: float,
    flash_rate: int,
    faults: tuple[str, ...],
) -> None:
    """Serve a simulated MCU board over mcumgr SMP until SIGTERM or SIGINT.

    Prints the address to update it at: smp+serial:///dev/pts/N (a pty) or
    smp+socket://127.0.0.1:PORT. Creates the board in DIR on first start.
    Line faults for a serial line: drop:byte=N, noise:byte=N, link-drop:byte=N,
    hang:byte=N; the board's own: power-cut:byte=N (image offset), corrupt:byte=N.
    """
    import signal

    from fieldkit.simulator.catalog import model_named
    from fieldkit.simulator.device import SimulatedCharger
    from fieldkit.simulator.faults import FaultPlan
    from fieldkit.simulator.smp_server import PtyLine, SmpBoard, TcpLine

    del protocol  # SMP is the one serial protocol the simulator speaks so far
    plan = FaultPlan.parse(list(faults))  # refuse a bad spec before anything starts
    if line == "socket":
        require_free_port("127.0.0.1", port)
    if not (state_dir / "state.json").exists():
        try:
            spec = model_named(model)
        except KeyError as exc:
            raise UsageError(str(exc.args[0]), "see `fieldkit sim models`") from exc
        SimulatedCharger.create(state_dir, spec, f"SIM-{state_dir.resolve().name.upper()}")
    else:
        SimulatedCharger(state_dir).power_on(max_boot_attempts=1)  # power is back: MCUboot runs
    board = SmpBoard(
        state_dir, plan, buf_size=buf_size, buf_count=buf_count, baud=baud,
        turnaround_s=turnaround_ms / 1000, flash_bytes_per_s=flash_rate or None,
    )  # fmt: skip
    served: PtyLine | TcpLine = PtyLine(board) if line == "pty" else TcpLine(board, port=port)
    signal.signal(signal.SIGTERM, lambda *_: served.stop())
    signal.signal(signal.SIGINT, lambda *_: served.stop())
    query = f"?baud={baud}" if baud else ""
    address = f"smp+serial://{served.url}{query}" if line == "pty" else f"smp+{served.url}{query}"
    click.echo(address)
    sys.stdout.flush()
    served.serve_forever()
