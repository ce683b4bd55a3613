"""The command line a simulated Linux charger offers over SSH.

    charger-identity --json              vendor, model, hardware revision, serial, components, slots
    charger-status --json                connectors (as a health check observes them), meter, transactions
    rauc install BUNDLE                  install an image into the inactive slot (RAUC's command line)
    rauc status --output-format=json     slots and boot state, in the shape RAUC prints
    rauc status mark-good|mark-bad [booted]
    reboot                               reset: the bootloader picks, verifies and starts images

Run as ``python -m fieldkit.simulator.shell PROGRAM ARGS...`` with the state
directory in ``FIELDKIT_SIM_STATE`` and faults in ``FIELDKIT_SIM_FAULTS``
(comma-separated specs). Under a real OpenSSH sshd, small shims named after
each program put it on the session's PATH, so the same driver code talks to
sshd and to the simulator's own SSH server alike.

A power cut (fault) ends the process with status 137, as SIGKILL would.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Final

from fieldkit.simulator.device import DeviceError, SimulatedCharger
from fieldkit.simulator.faults import FaultPlan, Hang, PowerCut
from fieldkit.simulator.image import read_image_header

STATE_ENV: Final = "FIELDKIT_SIM_STATE"
FAULTS_ENV: Final = "FIELDKIT_SIM_FAULTS"
PROGRAMS: Final = ("charger-identity", "charger-status", "rauc", "reboot")
COPY_CHUNK_BYTES: Final = 1 << 20


def _charger() -> SimulatedCharger:
    state = os.environ.get(STATE_ENV)
    if not state:
        raise SystemExit(f"{STATE_ENV} is not set")
    faults = FaultPlan.parse([s for s in os.environ.get(FAULTS_ENV, "").split(",") if s.strip()])
    return SimulatedCharger(Path(state), faults)


def _identity(charger: SimulatedCharger) -> dict[str, object]:
    status = charger.status()
    return {
        **charger.identity,
        "components": status["components"],
        "security_version_floor": status["security_version_floor"],
        "transaction_active": status["transaction_active"],
        "meter_wh": status["meter_wh"],
    }


def _rauc_status(charger: SimulatedCharger) -> dict[str, object]:
    slots = []
    for name, state in charger.components.items():
        for index, slot in enumerate(("A", "B")):
            image = state.slots.get(slot)
            booted = slot == state.active
            slots.append(
                {
                    f"{name}.{index}": {
                        "class": name,
                        "bootname": slot,
                        "state": "booted" if booted else "inactive",
                        "boot_status": "good"
                        if slot == state.committed
                        else ("pending" if slot == state.pending else "bad"),
                        "slot_status": {
                            "bundle": {"version": image.version if image else None},
                            "checksum": {"digest": image.sha256 if image else None},
                        },
                    }
                }
            )
    first = next(iter(charger.components.values()))
    return {
        "compatible": charger.identity["model"],
        "booted": first.active,
        "boot_primary": f"{next(iter(charger.components))}.{'AB'.index(first.pending or first.committed)}",
        "slots": slots,
    }


def _rauc(charger: SimulatedCharger, args: list[str]) -> int:
    if args[:1] == ["install"] and len(args) == 2:
        bundle = Path(args[1])
        header = read_image_header(bundle)
        if header is None:
            print(f"rauc: error: {bundle} is not a valid bundle", file=sys.stderr)
            return 1
        print(f"installing {bundle}: {header.component} {header.version}")
        charger.begin_install(header.component)
        digest = hashlib.sha256()
        offset = 0
        with bundle.open("rb") as source:
            while chunk := source.read(COPY_CHUNK_BYTES):
                charger.write_slot(header.component, offset, chunk)
                digest.update(chunk)
                offset += len(chunk)
        charger.finish_install(header.component, digest.hexdigest())
        print("100% Installing done.")
        return 0
    if args[:1] == ["status"] and "--output-format=json" in args:
        print(json.dumps(_rauc_status(charger)))
        return 0
    if args[:2] == ["status", "mark-good"]:
        for name, state in charger.components.items():
            if state.pending is not None and state.active == state.pending:
                charger.mark_good(name)
        print("rauc status: marked booted slot as good")
        return 0
    if args[:2] == ["status", "mark-bad"]:
        # Abandons every pending image, booted or only installed: what a rollback needs.
        for name, state in charger.components.items():
            if state.pending is not None:
                charger.mark_bad(name)
        print(f"rauc status: marked booted slot as {args[1][5:]}")
        return 0
    print(f"rauc: error: unsupported arguments {' '.join(args)!r}", file=sys.stderr)
    return 2


def run(program: str, args: list[str]) -> int:
    charger = _charger()
    if program == "charger-identity":
        print(json.dumps(_identity(charger)))
        return 0
    if program == "charger-status":
        status = charger.status()
        print(
            json.dumps(
                {
                    "connectors": charger.observed_connectors(),
                    "meter_wh": status["meter_wh"],
                    "transaction_active": status["transaction_active"],
                    "components": status["components"],
                    "last_boot": status["last_boot"],
                }
            )
        )
        return 0
    if program == "rauc":
        return _rauc(charger, args)
    if program == "reboot":
        record = charger.power_on()
        print(f"rebooted: {record.result} {record.detail}".rstrip())
        return 0
    print(f"{program}: command not found", file=sys.stderr)
    return 127


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        print(f"usage: python -m fieldkit.simulator.shell {{{'|'.join(PROGRAMS)}}} ARGS...", file=sys.stderr)
        raise SystemExit(2)
    try:
        code = run(sys.argv[1], sys.argv[2:])
    except PowerCut:
        sys.stdout.flush()
        os._exit(137)
    except Hang:
        import time

        time.sleep(3600)  # a hung charger answers nothing; the caller's timeout ends this
        code = 1
    except DeviceError as exc:
        print(f"{sys.argv[1]}: error: {exc.message}", file=sys.stderr)
        code = 1
    raise SystemExit(code)


def write_shims(directory: Path, python: str) -> Path:
    """Scripts named after each program that run this module, for a real sshd's PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    for program in PROGRAMS:
        shim = directory / program
        shim.write_text(f'#!/bin/sh\nexec "{python}" -m fieldkit.simulator.shell {program} "$@"\n')
        shim.chmod(0o755)
    return directory


if __name__ == "__main__":
    main()
