"""A real OpenSSH sshd on loopback, with its own config, host key and authorized_keys."""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.backoffice import free_port

SSHD = "/usr/sbin/sshd"


def sshd_available() -> bool:
    return Path(SSHD).exists() and shutil.which("ssh-keygen") is not None


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fieldkit-test", "-f", str(path)], check=True)
    return path


def keygen_fingerprint(public_key: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


class Sshd:
    def __init__(self, directory: Path, extra_config: str = "") -> None:
        self.dir = directory
        self.extra_config = extra_config
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.client_key = keygen(directory / "client_key")
        (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
        (directory / "authorized_keys").chmod(0o600)
        self.host_key = keygen(directory / "host_key")
        self.process: subprocess.Popen[bytes] | None = None

    def new_host_key(self) -> None:
        for suffix in ("", ".pub"):
            (self.dir / f"host_key{suffix}").unlink()
        self.host_key = keygen(self.dir / "host_key")

    def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege-separation directory
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPidFile {self.dir / 'sshd.pid'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\n" + self.extra_config
        )
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
