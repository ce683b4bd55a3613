"""The command line a simulated Linux charger offers over SSH.

    charger-identity --json              vendor, model, hardware revision, serial, components, slots
    charger-status --json                connectors (as a health check observes them), meter, transactions
    rauc install BUNDLE                  install an image into the inactive slot (RAUC's command line)
    rauc status --detailed --output-format=json   slots and boot state, in the shape RAUC prints
    rauc status mark-good|mark-bad|mark-active booted|other   as RAUC does them, harmful or not
    swupdate -i IMAGE                    SWUpdate's local install; fw_setenv ustate 0|3 commits or fails it
    mender-update install IMAGE | commit | rollback
    charger-update install IMAGE | commit | rollback   a vendor script
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from fieldkit.simulator.device import DeviceError, SimulatedCharger
from fieldkit.simulator.faults import FaultPlan, Hang, PowerCut
from fieldkit.simulator.image import read_image_header

STATE_ENV: Final = "FIELDKIT_SIM_STATE"
FAULTS_ENV: Final = "FIELDKIT_SIM_FAULTS"
VENDOR_SCRIPT: Final = "charger-update"  # the simulated vendor script's name (a driver setting on the laptop)
PROGRAMS: Final = (
    "charger-identity",
    "charger-status",
    "rauc",
    "swupdate",
    "fw_setenv",
    "mender-update",
    VENDOR_SCRIPT,
    "reboot",
)
COPY_CHUNK_BYTES: Final = 1 << 20
POWER_CUT_STATUS: Final = 137  # how a process ends when the charger loses power under it (as SIGKILL)


def _charger() -> SimulatedCharger:
    state = os.environ.get(STATE_ENV)
    if not state:
        raise SystemExit(f"{STATE_ENV} is not set")
    faults = FaultPlan.parse([s for s in os.environ.get(FAULTS_ENV, "").split(",") if s.strip()])
    return SimulatedCharger(Path(state), faults)


def _identity(charger: SimulatedCharger) -> dict[str, object]:
    status = charger.status()
    unknown = charger.faults.unknown_facts
    return {
        **charger.identity,
        "components": status["components"],
        "security_version_floor": None if "security_version_floor" in unknown else status["security_version_floor"],
        "transaction_active": None if "transaction" in unknown else status["transaction_active"],
        "meter_wh": status["meter_wh"],
        "connectors": [c["status"] for c in charger.connectors],
        "staging_dir": str(charger.staging_dir),  # its own: chargers simulated on one host must not share one
    }


def _rauc_status(charger: SimulatedCharger) -> dict[str, object]:
    """RAUC's view, in the shape `rauc status --detailed --output-format=json` prints (RAUC 1.8).

    Only the slots RAUC owns (other updaters keep their components to
    themselves). ``boot_status`` is the bootloader's: a slot it would still
    try is good, an empty or abandoned one bad; like real RAUC it cannot tell
    a trial boot from a committed one.
    """
    owned = {name: state for name, state in charger.components.items() if state.install_method == "rauc"}
    slots = []
    for name, state in owned.items():
        for index, slot in enumerate(("A", "B")):
            image = state.slots.get(slot)
            bootable = image is not None and slot in (state.committed, state.pending, state.active)
            slots.append(
                {
                    f"{name}.{index}": {
                        "class": name,
                        "bootname": slot,
                        "state": "booted" if slot == state.active else "inactive",
                        "boot_status": "good" if bootable else "bad",
                        "slot_status": {
                            "bundle": {"version": image.version if image else None},
                            "checksum": {"sha256": image.sha256 if image else None},
                        },
                    }
                }
            )
    if not owned:
        return {"compatible": charger.identity["model"], "booted": None, "boot_primary": None, "slots": []}
    first_name, first = next(iter(owned.items()))
    return {
        "compatible": charger.identity["model"],
        "booted": first.active,
        "boot_primary": f"{first_name}.{'AB'.index(first.pending or first.committed)}",
        "slots": slots,
    }


def _install(charger: SimulatedCharger, updater: str, bundle: Path) -> int:
    """What every updater does with an image file: check it, write it to the inactive slot, mark it to try."""
    header = read_image_header(bundle)
    if header is None:
        print(f"{updater}: error: {bundle} is not a valid image for this charger", file=sys.stderr)
        return 1
    owner = charger.components[header.component].install_method if header.component in charger.components else None
    if owner is not None and owner != updater:
        print(f"{updater}: error: {header.component} is managed by {owner}, not {updater}", file=sys.stderr)
        return 1
    if header.component in charger.faults.failing_installs:
        print(f"{updater}: error: writing {header.component} failed: flash verify error", file=sys.stderr)
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


def _commit(charger: SimulatedCharger, updater: str) -> list[str]:
    """Commit the booted trial images of the components ``updater`` owns."""
    committed = []
    for name, state in charger.components.items():
        if state.install_method == updater and state.pending is not None and state.active == state.pending:
            charger.mark_good(name)
            committed.append(name)
    return committed


def _abandon(charger: SimulatedCharger, updater: str) -> list[str]:
    """Abandon every pending image ``updater`` owns, booted or only installed: what a rollback needs."""
    abandoned = []
    for name, state in charger.components.items():
        if state.install_method == updater and state.pending is not None:
            charger.mark_bad(name)
            abandoned.append(name)
    return abandoned


def _rauc_mark(charger: SimulatedCharger, verb: str, which: str) -> str:
    """``rauc status mark-good|mark-bad|mark-active booted|other``, acting on slots as RAUC does.

    It does what it is told, harmful or not: marking the booted slot bad when
    that slot is the committed one leaves the bootloader only the other slot,
    and a charger whose other slot holds nothing bootable is bricked at its
    next boot. The driver must never ask for that.
    """
    for name, state in charger.components.items():
        if state.install_method != "rauc":
            continue
        booted = state.active
        target = booted if which == "booted" else ("B" if booted == "A" else "A")
        if verb == "mark-good":
            if target == booted and state.pending == booted:
                charger.mark_good(name)
        elif verb == "mark-active":
            if target == state.pending and target == booted:
                charger.mark_good(name)
            elif target == booted:
                charger.mark_bad(name)  # the pending install is abandoned; the booted slot is primary again
            elif state.slots.get(target) is not None and target != state.committed:
                state.pending, state.boot_attempts = target, 0
                charger.save()
        elif verb == "mark-bad":
            if target == state.pending:
                charger.mark_bad(name)
            elif target == state.committed:
                charger.mark_committed_bad(name)
        return f"{name}.{'AB'.index(target)}"
    raise DeviceError("no-rauc-slots", "this charger has no slots managed by RAUC")


def _rauc(charger: SimulatedCharger, args: list[str]) -> int:
    if args[:1] == ["install"] and len(args) == 2:
        return _install(charger, "rauc", Path(args[1]))
    if args[:1] == ["status"] and "--output-format=json" in args:
        print(json.dumps(_rauc_status(charger)))
        return 0
    if args[:1] == ["status"] and len(args) == 3 and args[1] in ("mark-good", "mark-bad", "mark-active"):
        if args[2] not in ("booted", "other"):
            print(f"rauc: error: slot {args[2]!r} not found (use booted or other)", file=sys.stderr)
            return 1
        slot = _rauc_mark(charger, args[1], args[2])
        done = {"mark-good": "marked slot {} as good", "mark-bad": "marked slot {} as bad",
                "mark-active": "activated slot {}"}[args[1]]  # fmt: skip
        print("rauc status: " + done.format(slot))
        return 0
    print(f"rauc: error: unsupported arguments {' '.join(args)!r}", file=sys.stderr)
    return 2


def _swupdate(charger: SimulatedCharger, args: list[str]) -> int:
    """``swupdate -i FILE`` (or ``--image FILE``): SWUpdate's local install."""
    if len(args) == 2 and args[0] in ("-i", "--image"):
        return _install(charger, "swupdate", Path(args[1]))
    print(f"swupdate: error: unsupported arguments {' '.join(args)!r}", file=sys.stderr)
    return 2


def _fw_setenv(charger: SimulatedCharger, args: list[str]) -> int:
    """SWUpdate's update state in the bootloader environment: ustate 0 = OK (commit), 3 = FAILED (roll back)."""
    if args == ["ustate", "0"]:
        _commit(charger, "swupdate")
        return 0
    if args == ["ustate", "3"]:
        _abandon(charger, "swupdate")
        return 0
    print(f"fw_setenv: error: only `ustate 0` and `ustate 3` are accepted, not {' '.join(args)!r}", file=sys.stderr)
    return 2


def _mender_update(charger: SimulatedCharger, args: list[str]) -> int:
    """``mender-update install FILE | commit | rollback``: Mender's standalone mode."""
    if args[:1] == ["install"] and len(args) == 2:
        return _install(charger, "mender", Path(args[1]))
    if args == ["commit"]:
        if not _commit(charger, "mender"):
            print("mender-update: error: no update in progress", file=sys.stderr)
            return 2
        print("Committed.")
        return 0
    if args == ["rollback"]:
        _abandon(charger, "mender")
        print("Rolled back.")
        return 0
    print(f"mender-update: error: unsupported arguments {' '.join(args)!r}", file=sys.stderr)
    return 2


def _vendor_script(charger: SimulatedCharger, args: list[str]) -> int:
    """The vendor's own updater, in the shape fieldkit expects: ``install FILE | commit | rollback``."""
    if args[:1] == ["install"] and len(args) == 2:
        return _install(charger, "script", Path(args[1]))
    if args == ["commit"]:
        _commit(charger, "script")
        return 0
    if args == ["rollback"]:
        _abandon(charger, "script")
        return 0
    print(f"{VENDOR_SCRIPT}: error: usage: {VENDOR_SCRIPT} install FILE | commit | rollback", file=sys.stderr)
    return 2


UPDATERS: Final[dict[str, Callable[[SimulatedCharger, list[str]], int]]] = {
    "rauc": _rauc,
    "swupdate": _swupdate,
    "fw_setenv": _fw_setenv,
    "mender-update": _mender_update,
    VENDOR_SCRIPT: _vendor_script,
}


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
                    "boot_id": f"sim-boot-{status['boot_count']}",
                }
            )
        )
        return 0
    updater = UPDATERS.get(program)
    if updater is not None:
        return updater(charger, args)
    if program == "reboot":
        record = charger.power_on()
        print(f"rebooted: {record.result} {record.detail}".rstrip())
        return 0
    print(f"{program}: command not found", file=sys.stderr)
    return 127


def execute(program: str, args: list[str]) -> int:
    """Run one program and return its exit status, as its process would end.

    A power cut ends the process on the spot with status 137 (as SIGKILL
    would), leaving whatever was half-written on flash; a hang answers nothing.
    """
    try:
        return run(program, args)
    except PowerCut:
        sys.stdout.flush()
        os._exit(POWER_CUT_STATUS)
    except Hang:
        time.sleep(3600)  # a hung charger answers nothing; the caller's timeout ends this
        return 1
    except DeviceError as exc:
        print(f"{program}: error: {exc.message}", file=sys.stderr)
        return 1


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in PROGRAMS:
        print(f"usage: python -m fieldkit.simulator.shell {{{'|'.join(PROGRAMS)}}} ARGS...", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(execute(sys.argv[1], sys.argv[2:]))


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
