"""A Linux charger built from stock parts on loopback: real RAUC, real U-Boot environment, real SSH servers.

``LinuxRig`` prepares a charger in a directory (two file-backed rootfs
slots, a U-Boot environment made by ``mkenvimage``, RAUC's ``system.conf``
and keyring, a login user), starts ``rig_init.py`` as its PID 1 in a
private mount namespace, and can cut its power. See rig_init.py for what is
simulated (flash, bootloader, init) and what is stock (everything the
laptop talks to).

Needs root, ``unshare``, overlayfs and loop devices, and Debian's rauc,
rauc-service, swupdate, mender-client, mender-artifact, u-boot-tools,
libubootenv-tool, squashfs-tools, dbus, openssh-server and dropbear-bin
(``.ci/run`` installs them).

Mender writes its slots as block devices (it asks the kernel their size),
so a Mender rig backs its two slot files with loop devices, attached by
``prepare`` and detached by ``dispose``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.support.backoffice import free_port
from tests.support.rig_init import REBOOT_SCRIPT
from tests.support.sshd import keygen

RIG_INIT = Path(__file__).with_name("rig_init.py")
COMPATIBLE = "Voltiq VQ-AC22-L rev C"
LOGIN_USER = "charger"  # dropbear chargers often log in as a service user
LOGIN_UID = 4242
SLOT_BYTES = 8 * 1024 * 1024
REQUIRED_TOOLS = ("unshare", "rauc", "swupdate", "fw_printenv", "fw_setenv", "mkenvimage", "mksquashfs", "dbus-daemon",
                  "dbus-send", "dropbear", "dropbearkey", "mender", "mender-artifact", "losetup", "sudo")  # fmt: skip
MENDER_DEVICE_TYPE = "vq-ac22-l"

Server = Literal["sshd", "dropbear"]
Updater = Literal["rauc", "swupdate", "mender"]


def rig_missing() -> str | None:
    """Why the rig cannot run here, or None. Under FIELDKIT_REQUIRE_RIG (CI) a missing rig fails instead."""
    reason = _rig_missing()
    if reason is not None and os.environ.get("FIELDKIT_REQUIRE_RIG"):
        raise RuntimeError(f"FIELDKIT_REQUIRE_RIG is set but {reason}")
    return reason


def _rig_missing() -> str | None:
    if os.geteuid() != 0:
        return "the Linux charger rig needs root (mount namespaces, loop devices)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if missing or not Path("/usr/sbin/sshd").exists():
        return f"the Linux charger rig needs {', '.join(missing or ['sshd'])} (installed by .ci/run)"
    return None


def rig_image(version: str, size_bytes: int = 1024 * 1024, health: str = "ok", name: str = "Voltiq OS") -> bytes:
    """A rootfs image the rig boots: os-release lines, a NUL, then filler that differs per version."""
    header = f'NAME="{name}"\nID=voltiq\nVERSION_ID={version}\n'
    if health != "ok":
        header += f"FIELDKIT_RIG_HEALTH={health}\n"
    head = header.encode() + b"\0"
    seed = (version + health).encode()
    filler = (seed * (size_bytes // len(seed) + 1))[: size_bytes - len(head)]
    return head + filler


def _device_number(path: str) -> list[int]:
    rdev = os.stat(path).st_rdev
    return [os.major(rdev), os.minor(rdev)]


def mender_partition_numbers() -> dict[str, int]:
    """Partition numbers for the two slots that the laptop's own root device name does not end in.

    Mender matches its environment's partition number against the end of the root device's name; the rig's
    root is the laptop's, so a number the laptop's root device also ends in would make Mender take it.
    """
    root = next(
        (line.split()[0] for line in Path("/proc/self/mounts").read_text().splitlines() if line.split()[1] == "/"),
        "",
    )
    for pair in ((2, 3), (5, 6), (7, 8)):
        if not any(root.endswith(str(number)) for number in pair):
            return {"A": pair[0], "B": pair[1]}
    raise RuntimeError(f"no slot partition numbers fit beside the root device {root}")


@dataclass(frozen=True)
class UbootEnv:
    order: tuple[str, ...]
    left: dict[str, int]

    def good(self, slot: str) -> bool:
        """A slot the bootloader would still try."""
        return slot in self.order and self.left.get(slot, 0) > 0


class LinuxRig:
    def __init__(
        self, directory: Path, server: Server = "sshd", window_bytes: int | None = None, updater: Updater = "rauc"
    ) -> None:
        self.dir = directory
        self.server = server
        self.updater = updater
        self.window_bytes = window_bytes
        self.port = free_port()
        self.user = "root" if server == "sshd" else LOGIN_USER
        self.process: subprocess.Popen[bytes] | None = None
        self.client_key = self.dir / "client_key"
        self.partitions: dict[str, int] = {"A": 2, "B": 3}  # the root= partition number of each slot
        self.loops: dict[str, str] = {}  # Mender: the loop device behind each slot file

    # -- making the charger ---------------------------------------------------------

    def prepare(
        self, factory_version: str = "1.0.0", keyring_pem: bytes | None = None, verify_key_pem: bytes | None = None
    ) -> LinuxRig:
        """``keyring_pem``: the CA RAUC and SWUpdate trust; ``verify_key_pem``: the public key Mender checks."""
        d = self.dir
        for sub in ("slots", "rauc-data", "etc-upper/rauc", "etc-upper/dropbear", "usrsbin-upper", "home-upper"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        slot_a = bytearray(SLOT_BYTES)
        image = rig_image(factory_version)
        slot_a[: len(image)] = image
        (d / "slots" / "rootfs.A").write_bytes(bytes(slot_a))
        (d / "slots" / "rootfs.B").write_bytes(bytes(SLOT_BYTES))
        if self.updater == "rauc":
            (d / "env.txt").write_text("BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n")
        elif self.updater == "mender":  # meta-mender's U-Boot integration: the partition to boot, and the trial
            self.partitions = mender_partition_numbers()
            part = self.partitions["A"]
            (d / "env.txt").write_text(
                f"mender_boot_part={part}\nmender_boot_part_hex={part:X}\nupgrade_available=0\nbootcount=0\n"
                "bootlimit=1\n"
            )
        else:  # SWUpdate with U-Boot's bootcount: the copy to boot, and whether it is on trial
            (d / "env.txt").write_text("rootpart=A\nupgrade_available=0\nbootcount=0\nbootlimit=3\nustate=0\n")
        subprocess.run(["mkenvimage", "-s", "0x4000", "-o", str(d / "uboot.env"), str(d / "env.txt")], check=True)
        self.fw_env_config.write_text(f"{d / 'uboot.env'} 0x0000 0x4000\n")
        etc = d / "etc-upper"
        shutil.copy(self.fw_env_config, etc / "fw_env.config")
        (etc / "rauc" / "system.conf").write_text(
            "[system]\n"
            f"compatible={COMPATIBLE}\n"
            "bootloader=uboot\n"
            f"data-directory={d / 'rauc-data'}\n"
            "\n[keyring]\npath=/etc/rauc/keyring.pem\n"
            f"\n[slot.rootfs.0]\ndevice={d / 'slots' / 'rootfs.A'}\ntype=raw\nbootname=A\n"
            f"\n[slot.rootfs.1]\ndevice={d / 'slots' / 'rootfs.B'}\ntype=raw\nbootname=B\n"
        )
        if keyring_pem is not None:
            (etc / "rauc" / "keyring.pem").write_bytes(keyring_pem)
            (etc / "swupdate").mkdir(exist_ok=True)
            for name in ("ca.pem", "public.pem"):  # public.pem: where the generic SWUpdate profile looks
                (etc / "swupdate" / name).write_bytes(keyring_pem)
        if self.updater == "mender":
            self._prepare_mender(etc, verify_key_pem)
        (etc / "hwrevision").write_text("VQ-AC22-L C\n")
        (etc / "machine-id").write_text("5a1e0c2b9d3f4e6a8b7c0d1e2f3a4b5c\n")
        with (etc / "passwd").open("w") as handle:
            handle.write(Path("/etc/passwd").read_text())
            handle.write(f"{LOGIN_USER}:x:{LOGIN_UID}:{LOGIN_UID}::/home/{LOGIN_USER}:/bin/sh\n")
        with (etc / "group").open("w") as handle:
            handle.write(Path("/etc/group").read_text())
            handle.write(f"{LOGIN_USER}:x:{LOGIN_UID}:\n")
        with (etc / "shadow").open("w") as handle:
            handle.write(Path("/etc/shadow").read_text())
            handle.write(f"{LOGIN_USER}:*:20000:0:99999:7:::\n")
        (etc / "shadow").chmod(0o640)
        # The service user may run exactly the updater's root-only programs, as a charger maker grants them;
        # a profile's `privileged = "sudo -n"` puts sudo in front of them. RAUC needs none (D-Bus).
        (etc / "sudoers.d").mkdir(mode=0o750, exist_ok=True)
        (etc / "sudoers.d" / "charger").write_text(
            f"{LOGIN_USER} ALL=(root) NOPASSWD: /usr/bin/swupdate, /usr/bin/fw_printenv, /usr/bin/fw_setenv, "
            "/usr/bin/mender\n"
        )
        (etc / "sudoers.d" / "charger").chmod(0o440)
        for bin_dir in ("usrbin-upper", "usrsbin-upper"):  # on every user's PATH, as root's
            (d / bin_dir).mkdir(exist_ok=True)
            reboot = d / bin_dir / "reboot"
            reboot.write_text(REBOOT_SCRIPT)
            reboot.chmod(0o755)
        keygen(self.client_key)
        self._install_server(etc)
        return self

    def _install_server(self, etc: Path) -> None:
        authorized = self.client_key.with_suffix(".pub").read_text()
        d = self.dir
        if self.server == "sshd":
            host_key = keygen(d / "ssh_host_ed25519_key")
            (d / "authorized_keys").write_text(authorized)
            config = d / "sshd_config"
            config.write_text(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile /run/sshd.pid\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
                "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
                "Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel ERROR\n"
            )
            argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]
        else:
            host_key = etc / "dropbear" / "dropbear_ed25519_host_key"
            subprocess.run(["dropbearkey", "-t", "ed25519", "-f", str(host_key)], check=True, capture_output=True)
            home = d / "home-upper" / LOGIN_USER
            (home / ".ssh").mkdir(parents=True)
            (home / ".ssh" / "authorized_keys").write_text(authorized)
            (home / ".ssh" / "authorized_keys").chmod(0o600)
            (home / ".ssh").chmod(0o700)
            for path in (home, home / ".ssh", home / ".ssh" / "authorized_keys"):
                os.chown(path, LOGIN_UID, LOGIN_UID)
            argv = ["dropbear", "-F", "-E", "-s", "-p", f"127.0.0.1:{self.port}",
                    "-r", "/etc/dropbear/dropbear_ed25519_host_key", "-P", "/run/dropbear.pid"]  # fmt: skip
            if self.window_bytes is not None:
                argv += ["-W", str(self.window_bytes)]
        (d / "rig.json").write_text(json.dumps({
            "server_argv": argv, "updater": self.updater, "partitions": self.partitions,
            "loops": {slot: _device_number(path) for slot, path in self.loops.items()},
        }))  # fmt: skip

    def _prepare_mender(self, etc: Path, verify_key_pem: bytes | None) -> None:
        """Mender 3 in standalone mode: its configuration, device type, data store, and block-device slots."""
        d = self.dir
        for slot in ("A", "B"):
            attached = subprocess.run(
                ["losetup", "--find", "--show", str(d / "slots" / f"rootfs.{slot}")],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            self.loops[slot] = attached.stdout.strip()
        (d / "loops").write_text("\n".join(self.loops.values()) + "\n")
        (etc / "mender").mkdir(exist_ok=True)
        settings: dict[str, object] = {
            "RootfsPartA": f"/dev/mmcblk0p{self.partitions['A']}",
            "RootfsPartB": f"/dev/mmcblk0p{self.partitions['B']}",
            "UpdatePollIntervalSeconds": 1800,
            "InventoryPollIntervalSeconds": 28800,
            "RetryPollIntervalSeconds": 300,
        }
        if verify_key_pem is not None:
            (etc / "mender" / "artifact-verify-key.pem").write_bytes(verify_key_pem)
            settings["ArtifactVerifyKey"] = "/etc/mender/artifact-verify-key.pem"
        (etc / "mender" / "mender.conf").write_text(json.dumps(settings, indent=2))
        (d / "varlib-upper" / "mender").mkdir(parents=True, exist_ok=True)
        (d / "varlib-upper" / "mender" / "device_type").write_text(f"device_type={MENDER_DEVICE_TYPE}\n")

    def dispose(self) -> None:
        """Power off for good and give the loop devices back."""
        self.power_off()
        for device in self.loops.values():
            subprocess.run(["losetup", "--detach", device], check=False, capture_output=True)
        self.loops = {}

    @property
    def fw_env_config(self) -> Path:
        return self.dir / "fw_env.config"

    @property
    def address(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    # -- power ------------------------------------------------------------------------

    def start(self, timeout_s: float = 60.0) -> None:
        """Power on: the bootloader picks a slot, init starts the services; returns once SSH answers."""
        (self.dir / "ready").unlink(missing_ok=True)
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable, str(RIG_INIT), str(self.dir)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not (self.dir / "ready").exists():
            if self.bricked:
                raise AssertionError(f"the rig did not boot: {(self.dir / 'bricked').read_text()}")
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"rig init exited with {self.process.returncode}; see {self.dir / 'boot.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the rig did not come up within {timeout_s:.0f} s")
            time.sleep(0.02)

    def _namespace_pids(self) -> list[int]:
        if self.process is None:
            return []
        try:
            namespace = os.readlink(f"/proc/{self.process.pid}/ns/mnt")
        except OSError:
            return []
        # unshare execs the init, so the process we started is PID 1 of the rig; its namespace is the rig's.
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "mnt") == namespace:
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def power_off(self) -> None:
        """Cut the power: every process of the charger dies at once; flash stays as it is."""
        pids = self._namespace_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        (self.dir / "ready").unlink(missing_ok=True)
        self.process = None

    def power_cut(self) -> None:
        self.power_off()
        self.start()

    # -- what the flash says ------------------------------------------------------------

    @property
    def bricked(self) -> bool:
        return (self.dir / "bricked").exists()

    def env(self) -> UbootEnv:
        out = subprocess.run(
            ["fw_printenv", "-c", str(self.fw_env_config)], check=True, capture_output=True, text=True
        ).stdout
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return UbootEnv(
            tuple(values.get("BOOT_ORDER", "").split()),
            {slot: int(values.get(f"BOOT_{slot}_LEFT", "0") or 0) for slot in ("A", "B")},
        )

    def slot_devices(self) -> dict[str, str]:
        """The flash partitions (files) a SWUpdate image names per copy."""
        return {slot: str(self.dir / "slots" / f"rootfs.{slot}") for slot in ("A", "B")}

    def env_vars(self) -> dict[str, str]:
        out = subprocess.run(
            ["fw_printenv", "-c", str(self.fw_env_config)], check=True, capture_output=True, text=True
        ).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def booted_slot(self) -> str:
        root = (self.dir / "cmdline").read_text().split("root=", 1)[1].split()[0]
        number = int(root.rsplit("p", 1)[1])
        return next(slot for slot, part in self.partitions.items() if part == number)

    def running_version(self) -> str:
        return self.boots()[-1][1]

    def boots(self) -> list[tuple[str, str]]:
        path = self.dir / "boots"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(line.split()[0], line.split()[1]) for line in lines]

    def slot_version(self, slot: str) -> str | None:
        head = (self.dir / "slots" / f"rootfs.{slot}").read_bytes()[:4096].split(b"\0", 1)[0].decode("utf-8", "replace")
        fields = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
        return fields.get("VERSION_ID")

    def set_transaction(self, state: str) -> None:
        """What the charger's OCPP stack reports from the next boot on (``active`` or ``idle``)."""
        (self.dir / "transaction").write_text(state + "\n")
