"""The demo site behind `make demo`: simulated chargers and a local back office, started and stopped together.

Five chargers. Four Linux ones, each its own `fieldkit sim ssh` process on a
free loopback port, sharing one client key:

- a Voltiq VQ-AC22 (RAUC) that updates cleanly,
- a Voltiq VQ-DC150 (RAUC + a vendor-script meter) with a vehicle charging,
- a Kestrel KS-DC60 (SWUpdate) that updates cleanly,
- a Nordvolt NV-AC7 (Mender) whose new image never becomes healthy, so it rolls back;

and an Ampero AMP-WB7 wallbox MCU, a `fieldkit sim serial` board speaking
mcumgr SMP on a pseudo-terminal paced as a 460800-baud UART: it cannot tell
whether a vehicle is charging or its anti-rollback floor, so the technician
confirms those before it starts.

The chargers start afresh every time; the demo's laptop home (identity, audit
trail) and the back office's SQLite database persist, so synced entries
accumulate.

The demo never touches the laptop's real fieldkit home: ``use_demo_home``
points ``FIELDKIT_HOME`` at ``DIR/home`` for this process and everything it
starts, before anything is read or written. Its identity, job journals,
known hosts and back-office credential live there; a ``config.toml`` placed
there tunes the demo.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from fieldkit.audit.identity import PASSPHRASE_ENV, identity_dir, init_identity
from fieldkit.config import HOME_ENV, data_dir
from fieldkit.demo.library import INDEX_NAME, init_demo
from fieldkit.errors import FieldkitError
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.ssh_server import write_openssh_key
from fieldkit.updates.journal import JobRecord, Journal, jobs_dir


@dataclass(frozen=True)
class DemoCharger:
    name: str
    model: str
    serial: str
    faults: tuple[str, ...] = ()
    charging: bool = False
    serial_baud: int | None = None  # an MCU board over mcumgr SMP on a pty at this rate, not over SSH


DEMO_CHARGERS: Final = (
    DemoCharger("ac22", "VQ-AC22", "SIM-AC22-0001"),
    DemoCharger("dc150", "VQ-DC150", "SIM-DC150-0002", charging=True),
    # A slow field link (256 KiB/s): its transfer lasts long enough to watch progress, rate and ETA.
    DemoCharger("ks-dc60", "KS-DC60", "SIM-KS60-0003", faults=(f"rate:{256 * 1024}",)),
    DemoCharger("nv-ac7", "NV-AC7", "SIM-NV7-0004", faults=("never-available",)),
    DemoCharger("wb7", "AMP-WB7", "SIM-WB7-0005", serial_baud=460_800),
)
START_TIMEOUT_S: Final = 30


def _fieldkit() -> list[str]:
    script = Path(sys.executable).with_name("fieldkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fieldkit"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DemoSite:
    directory: Path
    client_key: Path
    addresses: list[str] = field(default_factory=list)
    backoffice_url: str = ""
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def _spawn(site: DemoSite, argv: list[str], first_line_prefix: str | None) -> str:
    """Start a process of the site; return its first output line (when asked for)."""
    process = subprocess.Popen(  # noqa: S603 - our own program, fixed arguments
        argv,
        stdout=subprocess.PIPE if first_line_prefix else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    site.processes.append(process)
    if first_line_prefix is None:
        return ""
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith(first_line_prefix):
        raise FieldkitError(f"demo: `{' '.join(argv[1:3])}` did not start", "run `make demo` again; see --debug")
    return line


def ensure_identity(home_secret: Path) -> None:
    """A demo technician identity, with its passphrase in a file only this demo uses."""
    if not home_secret.exists():
        home_secret.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(home_secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    os.environ[PASSPHRASE_ENV] = str(home_secret)
    if not (identity_dir() / "profile.json").exists():
        passphrase = home_secret.read_text(encoding="utf-8").splitlines()[0].encode("utf-8")
        init_identity("DEMO-T1", "Demo Technician", "Demo depot", passphrase)


def _start_backoffice(site: DemoSite) -> None:
    port = _free_port()
    database = f"sqlite:///{(site.directory / 'backoffice.db').resolve()}"
    site.backoffice_url = f"http://127.0.0.1:{port}"
    _spawn(site, [*_fieldkit(), "backoffice", "serve", "--db", database, "--port", str(port)], None)
    credential = identity_dir() / "backoffice-credential.json"
    if credential.exists():  # enrolled on an earlier run: same database, a new port
        document = json.loads(credential.read_text(encoding="utf-8"))
        document["backoffice_url"] = site.backoffice_url
        credential.write_text(json.dumps(document, indent=2), encoding="utf-8")
        return
    enrolled = subprocess.run(  # noqa: S603 - our own program
        [
            *_fieldkit(),
            "backoffice",
            "enroll-laptop",
            "--db",
            database,
            "--public-key",
            str(identity_dir() / "laptop.pub"),
            "--name",
            "demo-laptop",
            "--url",
            site.backoffice_url,
            "--out",
            str(credential),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if enrolled.returncode != 0:
        reason = (enrolled.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise FieldkitError(f"demo: enrolling the laptop at its back office failed: {reason}", "run it again")


def demo_home(directory: Path) -> Path:
    return (directory / "home").resolve()


def use_demo_home(directory: Path) -> Path:
    """Make ``DIR/home`` fieldkit's home for this process and its children; returns it."""
    home = demo_home(directory)
    home.mkdir(parents=True, exist_ok=True)
    os.environ[HOME_ENV] = str(home)
    return home


def start_site(directory: Path) -> DemoSite:
    """Demo material if missing, an identity, the back office and the chargers; stop() ends them all.

    Runs in the demo's own home (``use_demo_home``), whatever ``FIELDKIT_HOME`` said before.
    """
    use_demo_home(directory)
    if not (directory / INDEX_NAME).exists():
        init_demo(directory)
    ensure_identity(directory / "home-secret" / "passphrase")
    sims = directory / "sims"
    journal = Journal(jobs_dir())
    unfinished = journal.unfinished()
    if not unfinished:  # every demo starts from factory-fresh chargers...
        shutil.rmtree(sims, ignore_errors=True)
        shutil.rmtree(jobs_dir(), ignore_errors=True)
    # ...unless an update was left unfinished (quit mid-transfer): then its chargers come back as they
    # were, power-cycled, so the TUI can offer to resume the job, as on site.
    _forget_demo_host_keys()
    sims.mkdir(parents=True, exist_ok=True)
    client_key = sims / "client_key"
    if not client_key.exists():
        (sims / "client_key.pub").write_bytes(write_openssh_key(client_key, "fieldkit-demo"))
    site = DemoSite(directory, client_key)
    try:
        _start_backoffice(site)
        for charger in DEMO_CHARGERS:
            state = sims / charger.name
            if not (state / "state.json").exists():
                simulated = SimulatedCharger.create(state, model_named(charger.model), charger.serial)
                if charger.charging:
                    simulated.start_transaction(1)
            if charger.serial_baud is not None:
                argv = [*_fieldkit(), "sim", "serial", "--state", str(state), "--line", "pty",
                        "--baud", str(charger.serial_baud)]  # fmt: skip
                site.addresses.append(_spawn(site, argv, "smp+serial://"))
                continue
            argv = [
                *_fieldkit(),
                "sim",
                "ssh",
                "--state",
                str(state),
                "--port",
                "0",
                "--authorized-key",
                str(sims / "client_key.pub"),
                *(f"--fault={f}" for f in charger.faults),
            ]
            site.addresses.append(_spawn(site, argv, "ssh://"))
        _follow_to_new_ports(
            journal, unfinished, dict(zip((c.serial for c in DEMO_CHARGERS), site.addresses, strict=True))
        )
    except BaseException:
        site.stop()
        raise
    return site


def _follow_to_new_ports(journal: Journal, unfinished: list[JobRecord], address_of: dict[str, str]) -> None:
    """The demo's chargers listen on new ports each run: point unfinished jobs at where their charger is now."""
    for record in unfinished:
        address = address_of.get(record.charger_serial)
        if address is not None and address != record.charger_address:
            record.charger_address = address
            journal.save(record)


def _forget_demo_host_keys() -> None:
    """Drop the demo home's pins for loopback ports: its chargers get new ports (and keys) every run, and the
    file would otherwise grow by one entry per charger per run."""
    known_hosts = data_dir() / "known_hosts"
    if known_hosts.is_file():
        kept = [line for line in known_hosts.read_text().splitlines() if not line.startswith("[127.0.0.1]:")]
        known_hosts.write_text("".join(f"{line}\n" for line in kept))
