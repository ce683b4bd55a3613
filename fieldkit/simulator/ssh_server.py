"""The simulated Linux charger's SSH endpoint (paramiko server): exec and SFTP.

Exec requests run like sshd runs them: ``/bin/sh -c COMMAND`` with the
charger's programs (simulator/shell.py shims) first on PATH and the state
directory in the environment; a plain call of one of those programs skips
the shell and the interpreter start-up and runs in a process forked from a
warm helper (simulator/forkserver.py). SFTP serves the charger's filesystem. Link
faults (link_faults.py) count the image bytes SFTP receives: a rate limit,
a link that drops after N bytes, a link that stalls. A command that ends in a power cut (status 137) takes the
whole endpoint down, as losing power would.

For the demo and fast tests; integration tests also run the same commands
behind a real OpenSSH sshd, so paramiko never only talks to paramiko.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    MSG_CHANNEL_REQUEST,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from paramiko.sftp import SFTP_OK, SFTP_OP_UNSUPPORTED
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_handle import SFTPHandle
from paramiko.sftp_server import SFTPServer
from paramiko.sftp_si import SFTPServerInterface

from fieldkit.errors import LinkLostError
from fieldkit.simulator.faults import FaultPlan
from fieldkit.simulator.forkserver import CommandOutcome, ProgramRunner
from fieldkit.simulator.link_faults import LinkFaults
from fieldkit.simulator.shell import FAULTS_ENV, POWER_CUT_STATUS, PROGRAMS, STATE_ENV, write_shims

COMMAND_TIMEOUT_S: Final = 600


class _LinkBudget(LinkFaults):
    """The SSH link's faults (link_faults.py), counted in image bytes received over SFTP by all sessions."""

    def __init__(self, faults: FaultPlan, links: Callable[[], list[paramiko.Transport]]) -> None:
        super().__init__(faults)
        self.links = links
        self.handles: weakref.WeakSet[_Handle] = weakref.WeakSet()

    def receive(self, count: int, handle: _Handle) -> None:
        """Account for an SFTP write of ``count`` bytes about to land; raise once the link is down.

        A write the cut falls inside never lands: its request never arrived
        whole. After the cut nothing more lands, as on a real link: writes
        already queued behind it fail too, so the staged file is a clean
        prefix and never a prefix with holes.
        """
        if handle.dead or self.cut:
            raise OSError("link dropped")
        if self.admit(count) < count:
            victims = self.links()  # the links up now; never one opened after the drop
            for open_handle in list(self.handles):  # requests still queued on the dead link never land
                open_handle.dead = True
            for transport in victims:
                transport.close()
            raise OSError("link dropped")
        try:
            self.wait_while_stalled()
        except LinkLostError as exc:
            raise OSError(str(exc)) from exc
        self.pace(count)


class _Handle(SFTPHandle):
    def __init__(self, file: Any, budget: _LinkBudget) -> None:
        super().__init__()
        self.readfile = file
        self.writefile = file
        self.budget = budget
        self.dead = False
        budget.handles.add(self)

    def write(self, offset: int, data: Any) -> int:  # Any: paramiko declares a Buffer
        self.budget.receive(len(data), self)
        return int(super().write(offset, data))

    def stat(self) -> SFTPAttributes | int:
        return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

    def chattr(self, attr: SFTPAttributes) -> int:
        """Only truncation is supported: what a resumed transfer asks for."""
        if attr.st_size is None:
            return SFTP_OP_UNSUPPORTED
        self.writefile.flush()
        os.ftruncate(self.writefile.fileno(), attr.st_size)
        return SFTP_OK


def _sftp_server_class(budget: _LinkBudget) -> type[SFTPServerInterface]:
    class _Filesystem(SFTPServerInterface):
        def open(self, path: str, flags: int, attr: SFTPAttributes) -> SFTPHandle | int:
            try:
                fd = os.open(path, flags, 0o644)
                if flags & os.O_RDWR:
                    mode = "r+b"
                elif flags & os.O_WRONLY:
                    mode = "ab" if flags & os.O_APPEND else "wb"  # wraps the fd; O_TRUNC already decided truncation
                else:
                    mode = "rb"
                # Unbuffered: an acknowledged write is on disk now, not whenever a dropped
                # session's handle happens to be collected.
                return _Handle(os.fdopen(fd, mode, buffering=0), budget)
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno or errno.EIO)

        def stat(self, path: str) -> SFTPAttributes | int:
            try:
                return SFTPAttributes.from_stat(os.stat(path))
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno or errno.EIO)

        lstat = stat

        def remove(self, path: str) -> int:
            try:
                os.remove(path)
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno or errno.EIO)
            return SFTP_OK

        def mkdir(self, path: str, attr: SFTPAttributes) -> int:
            try:
                os.mkdir(path)
            except OSError as exc:
                return SFTPServer.convert_errno(exc.errno or errno.EIO)
            return SFTP_OK

    return _Filesystem


# Characters that make a command line more than one plain program call.
_SHELL_SYNTAX: Final = frozenset("|&;<>()$`\\*?[#~\n")


def single_program_call(command: str) -> list[str] | None:
    """The words of ``command`` when it is one call of the charger's own programs and nothing else."""
    if any(character in _SHELL_SYNTAX for character in command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return words if words and words[0] in PROGRAMS else None


class _Server(paramiko.ServerInterface):
    def __init__(self, authorized: set[str], run: Callable[[paramiko.Channel, str], None]) -> None:
        self.authorized = authorized
        self.run = run
        self.accepted: dict[int, str] = {}  # channel id -> command, accepted but not yet started

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return AUTH_SUCCESSFUL if key.get_base64() in self.authorized else AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        # Only accepted here: _Transport starts it once the acceptance is on the wire.
        self.accepted[channel.get_id()] = command.decode("utf-8", "replace")
        return True

    def start_accepted(self, channel: paramiko.Channel) -> None:
        command = self.accepted.pop(channel.get_id(), None)
        if command is not None:
            threading.Thread(target=self.run, args=(channel, command), daemon=True).start()


def _answer_request_then_start(channel: paramiko.Channel, message: paramiko.Message) -> None:
    """A channel request handled as paramiko does (its answer sent), then an accepted exec started.

    paramiko answers an exec request after ``check_channel_exec_request``
    returns. A command started from inside that check can end and close its
    channel before the answer (a forked command takes a few ms); the client
    then sees "Channel closed." instead of the command's result. sshd answers
    first and runs the command after; so does this endpoint.
    """
    paramiko.Channel._handle_request(channel, message)  # type: ignore[attr-defined]
    server = channel.get_transport().server_object
    if isinstance(server, _Server):
        server.start_accepted(channel)


class _Transport(paramiko.Transport):
    """A server transport that runs an exec request's command only after answering the request."""

    _channel_handler_table: ClassVar[Mapping[int, Callable[[paramiko.Channel, paramiko.Message], None]]] = {
        **paramiko.Transport._channel_handler_table,  # type: ignore[attr-defined]
        MSG_CHANNEL_REQUEST: _answer_request_then_start,
    }


class SimulatedSshCharger:
    """Serves one simulated charger's state directory over SSH until stopped."""

    def __init__(
        self, state_dir: Path, port: int, authorized_keys: list[Path], faults: list[str], host: str = "127.0.0.1"
    ) -> None:
        self.state_dir = state_dir
        self.faults_spec = faults
        self.faults = FaultPlan.parse(faults)
        self.host_key = self._host_key(state_dir / "ssh_host_ed25519_key")
        self.authorized = {
            line.split()[1]
            for path in authorized_keys
            for line in path.read_text().splitlines()
            if len(line.split()) >= 2
        }
        self.shims = write_shims(state_dir / "bin", sys.executable)
        self.programs = ProgramRunner()
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.5)
        self.port = int(self.listener.getsockname()[1])
        self.stopping = threading.Event()
        self.transports: list[paramiko.Transport] = []
        self.budget = _LinkBudget(self.faults, lambda: list(self.transports))

    @staticmethod
    def _host_key(path: Path) -> paramiko.PKey:
        if not path.exists():
            write_openssh_key(path)
        return paramiko.Ed25519Key.from_private_key_file(str(path))

    def _drop_links(self) -> None:
        for transport in list(self.transports):
            transport.close()

    def _run_command(self, channel: paramiko.Channel, command: str) -> None:
        words = single_program_call(command)
        if words is not None:
            outcome = self.programs.run(str(self.state_dir), ",".join(self.faults_spec), words, COMMAND_TIMEOUT_S)
        else:
            outcome = self._run_in_shell(command)
        if outcome is None:  # hung past the timeout, or could not start
            with contextlib.suppress(OSError, EOFError):
                channel.send_exit_status(1)
                channel.close()
            return
        status, stdout, stderr = outcome
        if status == POWER_CUT_STATUS:
            self.stop()  # the charger lost power: no answer, every link goes with it
            return
        # paramiko says "the client went away" (before the answer: a reboot it did not wait for) with OSError or
        # EOFError, also from close: there is nobody to tell either way.
        with contextlib.suppress(OSError, EOFError):
            try:
                channel.sendall(stdout)
                channel.sendall_stderr(stderr)
                channel.send_exit_status(status)
            finally:
                channel.close()

    def _run_in_shell(self, command: str) -> CommandOutcome | None:
        """The charger's own shell runs what the SSH client asked for, exactly as sshd does."""
        env = {
            **os.environ,
            "PATH": f"{self.shims}:/usr/bin:/bin",
            STATE_ENV: str(self.state_dir),
            FAULTS_ENV: ",".join(self.faults_spec),
        }
        try:
            result = subprocess.run(  # noqa: S603
                ["/bin/sh", "-c", command], env=env, capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False
            )
        except (subprocess.TimeoutExpired, OSError):
            return None
        return result.returncode, result.stdout, result.stderr

    def serve_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            self.budget.reconnect()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as sshd does for sessions
            transport = _Transport(client)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", SFTPServer, _sftp_server_class(self.budget))
            try:
                transport.start_server(server=_Server(self.authorized, self._run_command))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()
                continue
            self.transports.append(transport)

    def stop(self) -> None:
        self.stopping.set()
        self.budget.release()
        self._drop_links()
        self.listener.close()
        self.programs.stop()


def write_openssh_key(path: Path, comment: str = "fieldkit-sim") -> bytes:
    """Write a new Ed25519 private key (OpenSSH format, owner-only) at ``path``; return its public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public + f" {comment}\n".encode()
