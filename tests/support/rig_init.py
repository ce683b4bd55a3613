"""PID 1 of a loopback Linux charger built from stock parts, for the real-updater tests.

Run as root inside a private mount namespace (``unshare -m --propagation
private``), with the rig directory as the only argument. It plays the parts
of the charger that cannot be real here: the flash (files), the bootloader
(reads and writes the real U-Boot environment with the real
``fw_printenv``/``fw_setenv``, the way RAUC's documented boot script does)
and init (mounts the booted slot's root file system over ``/etc`` and
starts the services). Everything the laptop talks to is stock: OpenSSH
``sshd`` or ``dropbear``, RAUC's D-Bus service on a real system bus, and the
tools that come with them.

What a booted slot holds: an image whose first bytes are ``os-release``
lines (``VERSION_ID=...``), optionally ``FIELDKIT_RIG_HEALTH=fail`` (the
image boots, but the charger's application fails), then padding. A slot
with no such header does not boot (a torn write, or nothing written).

``reboot`` (on the login user's PATH) asks this process for a reset over a
FIFO. Like a real system shutting down, the old system keeps answering for
``SHUTDOWN_GRACE_S`` before everything in the namespace is killed and the
bootloader runs again. Killing this process and everything in its namespace
from outside is a power cut: RAM (``/run``) goes, flash (the rig directory)
stays.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

SHUTDOWN_GRACE_S = 0.5
REBOOT_FIFO = "/run/reboot-request"
# The charger's own copies of these (its root file system); the rig directory keeps what it writes.
OVERLAYS = {"etc": "/etc", "usrbin": "/usr/bin", "usrsbin": "/usr/sbin", "home": "/home"}
# The rig's reset button: init reboots the charger after a short shutdown.
REBOOT_SCRIPT = f"#!/bin/sh\necho reboot > {REBOOT_FIFO}\n"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, text=True, capture_output=True)


def log(rig: Path, line: str) -> None:
    with (rig / "boot.log").open("a") as handle:
        handle.write(f"{time.time():.3f} {line}\n")


def mount_namespace(rig: Path, config: dict[str, object]) -> None:
    """The charger's own /etc (its root file system), /usr/bin (reboot), RAM, staging, boot id and cmdline."""
    for name, target in OVERLAYS.items():
        (rig / f"{name}-upper").mkdir(exist_ok=True)
        (rig / f"{name}-work").mkdir(exist_ok=True)
        options = f"lowerdir={target},upperdir={rig}/{name}-upper,workdir={rig}/{name}-work"
        sh("mount", "-t", "overlay", "overlay", "-o", options, target)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
    # root's home is the charger's, not the laptop's: no shell start-up files of the machine running the tests
    # (a pyenv `rehash` in ~/.bashrc runs for every SSH command and can wait on a lock for a minute).
    (rig / "root-home").mkdir(exist_ok=True)
    (rig / "root-home").chmod(0o700)
    sh("mount", "--bind", str(rig / "root-home"), "/root")
    (rig / "var-tmp").mkdir(exist_ok=True)
    (rig / "var-tmp").chmod(0o1777)
    sh("mount", "--bind", str(rig / "var-tmp"), "/var/tmp")
    for name in ("boot_id", "cmdline"):
        (rig / name).touch()
    sh("mount", "--bind", str(rig / "boot_id"), "/proc/sys/kernel/random/boot_id")
    sh("mount", "--bind", str(rig / "cmdline"), "/proc/cmdline")
    if config.get("updater") == "mender":
        # Mender's data store: Debian links /var/lib/mender to a /data partition the rig has not got; the
        # charger's /var/lib has a real directory there instead, kept in the rig directory (flash).
        options = f"lowerdir=/var/lib,upperdir={rig}/varlib-upper,workdir={rig}/varlib-work"
        (rig / "varlib-work").mkdir(exist_ok=True)
        sh("mount", "-t", "overlay", "overlay", "-o", options, "/var/lib")
        charger_dev(rig, config)


def charger_dev(rig: Path, config: dict[str, object]) -> None:
    """The charger's own /dev: the usual character devices, and its flash partitions (the rig's loop devices).

    Without it Mender would find the laptop's root disk among the devices and take it for the booted slot.
    """
    dev = rig / "dev"
    dev.mkdir(exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(dev))
    for name in ("null", "zero", "full", "random", "urandom", "tty", "ptmx"):
        (dev / name).touch()
        sh("mount", "--bind", f"/dev/{name}", str(dev / name))
    for name in ("pts", "shm"):
        (dev / name).mkdir()
    sh("mount", "--rbind", "/dev/pts", str(dev / "pts"))
    sh("mount", "-t", "tmpfs", "tmpfs", str(dev / "shm"))
    for target, link in (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                         ("/proc/self/fd/2", "stderr")):  # fmt: skip
        (dev / link).symlink_to(target)
    partitions: dict[str, int] = config["partitions"]  # type: ignore[assignment]
    loops: dict[str, list[int]] = config["loops"]  # type: ignore[assignment]
    for slot, (major, minor) in loops.items():
        os.mknod(dev / f"mmcblk0p{partitions[slot]}", 0o600 | stat.S_IFBLK, os.makedev(major, minor))
    sh("mount", "--move", str(dev), "/dev")


def read_env() -> dict[str, str]:
    out = sh("fw_printenv").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def bootloader(rig: Path, config: dict[str, object]) -> str | None:
    updater = config.get("updater", "rauc")
    if updater == "rauc":
        return rauc_bootloader(rig)
    if updater == "mender":
        return mender_bootloader(rig, config["partitions"])  # type: ignore[arg-type]
    return swupdate_bootloader(rig)


def rauc_bootloader(rig: Path) -> str | None:
    """RAUC's U-Boot boot logic: the first slot in BOOT_ORDER with attempts left, one attempt spent."""
    env = read_env()
    for slot in env.get("BOOT_ORDER", "").split():
        left = int(env.get(f"BOOT_{slot}_LEFT", "0") or 0)
        if left <= 0:
            continue
        sh("fw_setenv", f"BOOT_{slot}_LEFT", str(left - 1))
        header = slot_header(rig, slot)
        if header is None:  # the kernel would not start: that attempt is spent, reset and try again
            log(rig, f"slot {slot} does not boot")
            return rauc_bootloader(rig)
        return slot
    return None


def swupdate_bootloader(rig: Path, resets: int = 0) -> str | None:
    """The U-Boot bootcount scheme SWUpdate setups use: a trial boot counts, past bootlimit altbootcmd switches back."""
    env = read_env()
    slot = env.get("rootpart", "A")
    if env.get("upgrade_available") == "1":
        count = int(env.get("bootcount", "0") or 0) + 1
        if count > int(env.get("bootlimit", "3") or 3):
            slot = "B" if slot == "A" else "A"  # altbootcmd: back to the other copy, the update failed
            sh_script(f"rootpart={slot}\nupgrade_available=0\nbootcount=0\nustate=3\n")
        else:
            sh("fw_setenv", "bootcount", str(count))
    if slot_header(rig, slot) is None:
        log(rig, f"slot {slot} does not boot")
        # The watchdog resets the board; only a trial boot has anywhere else to go.
        return swupdate_bootloader(rig, resets + 1) if env.get("upgrade_available") == "1" and resets < 10 else None
    return slot


def mender_bootloader(rig: Path, partitions: dict[str, int], resets: int = 0) -> str | None:
    """meta-mender's U-Boot logic: boot ``mender_boot_part``; a trial past ``bootlimit`` runs altbootcmd."""
    env = read_env()
    slot_of = {str(number): slot for slot, number in partitions.items()}
    slot = slot_of.get(env.get("mender_boot_part", ""), "A")
    if env.get("upgrade_available") == "1":
        count = int(env.get("bootcount", "0") or 0) + 1
        if count > int(env.get("bootlimit", "1") or 1):
            slot = "B" if slot == "A" else "A"  # altbootcmd: the other partition, and the trial is over
            part = partitions[slot]
            sh_script(f"mender_boot_part={part}\nmender_boot_part_hex={part:X}\nupgrade_available=0\nbootcount=0\n")
        else:
            sh("fw_setenv", "bootcount", str(count))
    if slot_header(rig, slot) is None:
        log(rig, f"slot {slot} does not boot")
        if env.get("upgrade_available") == "1" and resets < 10:  # the watchdog resets the board
            return mender_bootloader(rig, partitions, resets + 1)
        return None
    return slot


def sh_script(lines: str) -> None:
    """Several variables in one write of the environment, as `fw_setenv -s` does."""
    subprocess.run(["fw_setenv", "-s", "/dev/stdin"], input=lines, text=True, check=True, capture_output=True)


def slot_header(rig: Path, slot: str) -> dict[str, str] | None:
    path = rig / "slots" / f"rootfs.{slot}"
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return None
    text = head.split(b"\0", 1)[0].decode("utf-8", "replace")
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return fields if "VERSION_ID" in fields else None


def boot(rig: Path, config: dict[str, object]) -> list[subprocess.Popen[bytes]]:
    updater = str(config.get("updater", "rauc"))
    slot = bootloader(rig, config)
    if slot is None:
        (rig / "bricked").write_text("no slot with boot attempts left\n")
        log(rig, "BRICKED: no bootable slot")
        return []
    header = slot_header(rig, slot)
    assert header is not None
    (rig / "boot_id").write_text(f"{uuid.uuid4()}\n")
    marker = f" rauc.slot={slot}" if updater == "rauc" else ""
    partitions: dict[str, int] = config.get("partitions") or {"A": 2, "B": 3}  # type: ignore[assignment]
    (rig / "cmdline").write_text(f"console=ttyS0 root=/dev/mmcblk0p{partitions[slot]}{marker}\n")
    os_release = "".join(f"{k}={v}\n" for k, v in header.items() if not k.startswith("FIELDKIT_RIG_"))
    # Debian's /etc/os-release is a link into /usr/lib, which is the laptop's: replace the link, never follow it.
    Path("/etc/os-release").unlink(missing_ok=True)
    Path("/etc/os-release").write_text(os_release)
    if updater == "swupdate":  # what the image says it installed, as SWUpdate-built images carry it
        Path("/etc/sw-versions").write_text(f"rootfs {header['VERSION_ID']}\n")
    if updater == "mender":  # what Mender reports until its first commit: the name the image was built as
        Path("/etc/mender/artifact_info").write_text(f"artifact_name={header['VERSION_ID']}\n")
    Path("/run/charger").mkdir()
    if header.get("FIELDKIT_RIG_HEALTH") == "fail":
        Path("/run/charger/failed").write_text("charger application failed to start\n")
    transaction = rig / "transaction"
    Path("/run/charger/transaction").write_text(transaction.read_text() if transaction.exists() else "idle\n")
    with (rig / "boots").open("a") as handle:
        handle.write(f"{slot} {header['VERSION_ID']}\n")
    log(rig, f"booted slot {slot} version {header['VERSION_ID']}")
    services: list[subprocess.Popen[bytes]] = []
    if updater == "rauc":
        services += start_rauc(rig)
    Path("/run/sshd").mkdir()
    server_log = (rig / "server.log").open("ab")
    argv = [str(a) for a in config["server_argv"]]  # type: ignore[attr-defined]
    services.append(subprocess.Popen(argv, stdout=server_log, stderr=server_log))
    return services


def start_rauc(rig: Path) -> list[subprocess.Popen[bytes]]:
    """The system bus and RAUC's service on it, as a RAUC system's init starts them."""
    services = []
    Path("/run/dbus").mkdir()
    bus_log = (rig / "dbus.log").open("ab")
    services.append(subprocess.Popen(["dbus-daemon", "--system", "--nofork", "--nopidfile"], stderr=bus_log))
    wait_for(lambda: Path("/run/dbus/system_bus_socket").exists(), "the system bus")
    rauc_log = (rig / "rauc.log").open("ab")
    services.append(subprocess.Popen(["rauc", "service"], stdout=rauc_log, stderr=rauc_log))
    wait_for(rauc_ready, "rauc service")
    return services


def rauc_ready() -> bool:
    """RAUC owns its bus name (asked of the bus itself: a call to RAUC would start a second one by activation)."""
    probe = subprocess.run(
        ["dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
         "org.freedesktop.DBus.NameHasOwner", "string:de.pengutronix.rauc"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return probe.returncode == 0 and "boolean true" in probe.stdout


def wait_for(condition: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"rig: {what} did not come up within {timeout_s:.0f} s")
        time.sleep(0.02)


def namespace_processes() -> list[int]:
    """Every other process in this mount namespace: the running system."""
    own = os.readlink("/proc/self/ns/mnt")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if os.readlink(entry / "ns" / "mnt") == own:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def power_off() -> None:
    for pid in namespace_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while namespace_processes() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, os.WNOHANG)
        time.sleep(0.01)
    sh("umount", "-l", "/run", check=False)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")


def main() -> None:
    rig = Path(sys.argv[1])
    if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
        raise SystemExit("rig_init.py mounts over /etc: run it only under `unshare --mount --propagation private`")
    config = json.loads((rig / "rig.json").read_text())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    mount_namespace(rig, config)
    fifo = Path(REBOOT_FIFO)
    while True:
        boot(rig, config)
        os.mkfifo(fifo)
        fifo.chmod(0o622)  # any login user may ask for a reset, as `reboot` under sudo would
        (rig / "ready").write_text(Path("/proc/sys/kernel/random/boot_id").read_text())
        while True:
            with fifo.open("r") as requests:  # blocks until `reboot` opens it
                if requests.readline().strip():
                    break
        log(rig, "reboot requested")
        time.sleep(SHUTDOWN_GRACE_S)  # the old system still answers while it shuts down
        (rig / "ready").unlink(missing_ok=True)
        power_off()


if __name__ == "__main__":
    main()
