"""SSH to Linux-based chargers: exec and SFTP over paramiko, with pinned host keys.

Host keys are pinned per charger in a known-hosts file (OpenSSH format). On
first contact the key's fingerprint is shown and the connection proceeds only
if the caller accepts it (a prompt, or --accept-new-host-key); a key that
differs from the pinned one is refused. paramiko's AutoAddPolicy is never
used. paramiko's exceptions end here: callers see fieldkit TransportErrors.

Blocking by nature; the async core calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import paramiko

from fieldkit.errors import (
    AuthenticationFailedError,
    CommandTimeoutError,
    DeviceRefusedError,
    HostKeyChangedError,
    HostKeyUnknownError,
    HostUnreachableError,
    LinkLostError,
    UsageError,
)
from fieldkit.transports.remote_shell import CommandResult
from fieldkit.transports.sftp_window import WindowedWriter
from fieldkit.transports.striped_upload import StripedUpload

MAX_COMMAND_OUTPUT_BYTES: Final = 4 * 1024 * 1024
# AEAD first: AES-GCM encrypts and authenticates in one OpenSSL pass, where CTR + HMAC costs two
# (measured here: ~111 vs ~88 MiB/s over SFTP). CTR stays for controllers without GCM (older dropbear);
# CBC and 3DES are not offered at all.
CIPHERS: Final = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")
SFTP_CHUNK_BYTES: Final = 1024 * 1024  # read size; sent as 32 KiB SFTP writes, a window of them in flight
PROGRESS_SLICE_BYTES: Final = 128 * 1024  # progress (and cancellation) granularity of an upload
STRIPED_MIN_BYTES: Final = 4 * 1024 * 1024  # below this, one channel: opening more costs more than it saves
# A peer window below this (dropbear's default is 24 KiB; OpenSSH grants 2 MiB) limits a channel to a window
# per round trip, so an upload spreads over several channels.
SMALL_WINDOW_BYTES: Final = 256 * 1024


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, address: str) -> SshTarget:
        """``ssh://USER@HOST[:PORT]`` (IPv6 hosts in brackets)."""
        parts = urlsplit(address)
        try:
            port = parts.port or 22
        except ValueError as exc:
            raise UsageError(f"{address!r} has an invalid port", "use ssh://USER@HOST:PORT") from exc
        if parts.scheme != "ssh" or not parts.hostname or not parts.username:
            raise UsageError(f"{address!r} is not an SSH charger address", "use ssh://USER@HOST[:PORT]")
        return cls(parts.username, parts.hostname, port)

    @property
    def known_hosts_name(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def __str__(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"


class _PinningPolicy(paramiko.MissingHostKeyPolicy):
    """Unknown key: pin it only if the caller accepts the fingerprint; otherwise refuse."""

    def __init__(self, known_hosts: Path, accept: Callable[[str, str], bool]) -> None:
        self.known_hosts = known_hosts
        self.accept = accept

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        shown = fingerprint(key)
        if not self.accept(hostname, shown):
            raise HostKeyUnknownError(
                f"{hostname} is not a known charger; its host key is {key.get_name()} {shown}",
                shown,
                "compare the fingerprint with the charger's label or documentation, then connect again "
                "with --accept-new-host-key",
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        pin_host_key(self.known_hosts, hostname, key)


def pin_host_key(known_hosts: Path, hostname: str, key: paramiko.PKey) -> None:
    """Add one pin to the known-hosts file: re-read, merge and replace it under a lock.

    Sessions pin concurrently (discovery identifies many chargers at once);
    writing back one session's own view would drop the pins of the others.
    """
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    with (known_hosts.parent / f".{known_hosts.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = paramiko.HostKeys()
        if known_hosts.exists():
            merged.load(str(known_hosts))
        merged.add(hostname, key.get_name(), key)
        tmp = known_hosts.with_name(f".{known_hosts.name}.tmp")
        merged.save(str(tmp))
        tmp.replace(known_hosts)


def _transport_factory(
    sock: Any,
    /,
    *,
    gss_kex: bool = False,
    gss_deleg_creds: bool = True,
    disabled_algorithms: Mapping[str, Iterable[str]] | None = None,
) -> paramiko.Transport:
    """paramiko's transport with fieldkit's cipher order (fieldkit never uses GSSAPI)."""
    del gss_kex, gss_deleg_creds
    if isinstance(sock, socket.socket):
        # As OpenSSH does: without it, Nagle's algorithm and the peer's delayed ACK hold each small
        # request (a command, an SFTP stat) for up to 40 ms, and an update makes dozens of them.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
    transport.get_security_options().ciphers = CIPHERS
    return transport


def _link_reason(error: BaseException) -> str:
    """Why a connection failed, in words: paramiko's "[Errno None] Unable to connect to port 22 on HOST"
    (every address refused) becomes "nothing answers on port 22 (connection refused)"; an errno becomes its text."""
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        return f"nothing answers on port {next(iter(error.errors))[1]} (connection refused)"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    text = str(error).replace("[Errno None] ", "")
    return text or type(error).__name__


class SshSession:
    """One authenticated SSH connection to one charger."""

    def __init__(
        self,
        target: SshTarget,
        known_hosts: Path,
        key_file: Path | None = None,
        password: str | None = None,
        accept_new_host_key: bool = False,
        confirm_host_key: Callable[[str, str], bool] | None = None,
        connect_timeout_s: float = 10.0,
        keepalive_s: int = 15,
        upload_streams: int = 1,
    ) -> None:
        self.target = target
        self.upload_streams = upload_streams
        self.known_hosts = known_hosts
        self.key_file = key_file
        self.password = password
        self.connect_timeout_s = connect_timeout_s
        self.keepalive_s = keepalive_s
        self._accept: Callable[[str, str], bool] = (
            (lambda _host, _fp: True) if accept_new_host_key else (confirm_host_key or (lambda _host, _fp: False))
        )
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._peer_window_bytes: int | None = None

    def __enter__(self) -> SshSession:
        self.connect()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        return str(self.target)

    @property
    def login_user(self) -> str:
        return self.target.user

    def connect(self) -> None:
        client = paramiko.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_PinningPolicy(self.known_hosts, self._accept))
        try:
            client.connect(
                self.target.host,
                port=self.target.port,
                username=self.target.user,
                key_filename=str(self.key_file) if self.key_file else None,
                password=self.password,
                allow_agent=self.password is None,
                look_for_keys=False,
                timeout=self.connect_timeout_s,
                banner_timeout=self.connect_timeout_s,
                auth_timeout=self.connect_timeout_s,
                transport_factory=_transport_factory,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyChangedError(
                f"{self.target.host}:{self.target.port} presented host key {fingerprint(exc.key)}, "
                f"but {fingerprint(exc.expected_key)} is pinned for it"
            ) from exc
        except paramiko.AuthenticationException as exc:
            transport = client.get_transport()
            link_gone = transport is None or not transport.is_active()
            client.close()
            if link_gone:
                # The server closed the connection mid-authentication (a charger shutting down for a reboot
                # does): the link was lost, our credentials were never judged.
                raise HostUnreachableError(f"{self.target} closed the connection while we logged in: {exc}") from exc
            raise AuthenticationFailedError(f"{self.target} refused our credentials: {exc}") from exc
        except (HostKeyUnknownError, HostKeyChangedError):
            client.close()
            raise
        except (OSError, EOFError, paramiko.SSHException) as exc:
            # EOFError: the peer closed during the handshake, e.g. a charger still booting.
            client.close()
            raise HostUnreachableError(f"cannot reach {self.target}: {_link_reason(exc)}") from exc
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(self.keepalive_s)
        self._client = client

    def close(self) -> None:
        """Close quietly: after a lost link, closing must not raise in place of the error that matters."""
        if self._sftp is not None:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self._sftp.close()
            self._sftp = None
        if self._client is not None:
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self._client.close()
            self._client = None

    def _connected(self) -> paramiko.SSHClient:
        if self._client is None:
            raise LinkLostError(f"not connected to {self.target}")
        return self._client

    def run(self, command: str, timeout_s: float = 60.0, stdin: bytes | None = None) -> CommandResult:
        """Run a command; output beyond 4 MiB is cut. Raises CommandTimeoutError or LinkLostError."""
        client = self._connected()
        try:
            channel_in, channel_out, channel_err = client.exec_command(command, timeout=timeout_s)
            if stdin is not None:
                channel_in.write(stdin)
            channel_in.channel.shutdown_write()
            stdout = channel_out.read(MAX_COMMAND_OUTPUT_BYTES)
            stderr = channel_err.read(MAX_COMMAND_OUTPUT_BYTES)
            status = channel_out.channel.recv_exit_status()
        except TimeoutError as exc:
            raise CommandTimeoutError(
                f"{self.target}: `{command.split(maxsplit=1)[0]}` did not finish in {timeout_s:.0f} s"
            ) from exc
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise LinkLostError(
                f"link to {self.target} lost while running `{command.split(maxsplit=1)[0]}`: {exc}"
            ) from exc
        if status == -1:  # the channel closed without an exit status: the charger went away mid-command
            raise LinkLostError(f"link to {self.target} lost while running `{command.split(maxsplit=1)[0]}`")
        return CommandResult(status, stdout, stderr)

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self._connected().open_sftp()
                channel = self._sftp.get_channel()
                # The window the charger grants a fresh channel, read before anything is sent on it.
                self._peer_window_bytes = int(channel.out_window_size) if channel is not None else None
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise LinkLostError(f"cannot open SFTP on {self.target}: {exc}") from exc
        return self._sftp

    def _small_window(self) -> bool:
        """Does the charger grant a channel a window small enough that more channels pay (dropbear's 24 KiB)?"""
        return self._peer_window_bytes is not None and self._peer_window_bytes < SMALL_WINDOW_BYTES

    def _open_extra_sftp(self) -> paramiko.SFTPClient:
        """Another SFTP channel on this connection, for a striped upload (closed by its user)."""
        return self._connected().open_sftp()

    def remote_size(self, path: str) -> int | None:
        """Size of a remote file, or None if it does not exist."""
        try:
            return int(self._sftp_client().stat(path).st_size or 0)
        except FileNotFoundError:
            return None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise LinkLostError(f"link to {self.target} lost during stat: {exc}") from exc

    def upload(
        self,
        local: Path,
        remote: str,
        offset: int = 0,
        on_progress: Callable[[int], None] | None = None,
        source_start: int = 0,
        length: int | None = None,
    ) -> int:
        """Write bytes ``offset..length`` of a local range to ``remote`` at ``offset``; returns bytes now there.

        The range is ``length`` bytes of ``local`` starting at ``source_start``
        (the whole file by default), so a payload streams straight out of its
        bundle. The remote file is truncated to ``offset`` first, so a resumed
        transfer continues exactly after the prefix the caller verified.
        Writes are pipelined: a window of them in flight, each answer checked (see sftp_window.py).
        With ``upload_streams`` > 1 the range is spread over that many SFTP
        channels (see striped_upload.py): a peer with small channel windows
        (dropbear) then carries several windows per round trip.
        """
        total = length if length is not None else local.stat().st_size - source_start
        sftp = self._sftp_client()
        try:
            mode = "r+b" if offset else "wb"
            if self.upload_streams > 1 and total - offset > STRIPED_MIN_BYTES and self._small_window():
                with sftp.open(remote, mode) as handle:
                    handle.truncate(offset)
                upload = StripedUpload(
                    self._open_extra_sftp, local, remote, source_start, offset, total, self.upload_streams
                )
                return upload.run(on_progress)
            with sftp.open(remote, mode) as handle, local.open("rb") as source:
                if offset:
                    handle.truncate(offset)
                source.seek(source_start + offset)
                writer = WindowedWriter(handle)
                position = offset
                while position < total and (chunk := source.read(min(SFTP_CHUNK_BYTES, total - position))):
                    view = memoryview(chunk)
                    # Report (and let the caller cancel) every slice, not every read: on a slow link a
                    # whole read can take seconds.
                    for start in range(0, len(view), PROGRESS_SLICE_BYTES):
                        piece = view[start : start + PROGRESS_SLICE_BYTES]
                        writer.write(position, piece)
                        position += len(piece)
                        if on_progress is not None:
                            on_progress(position)
                writer.flush()
            return position
        except PermissionError as exc:
            # The charger said no (SFTP's permission denied): retrying the link would repeat it forever.
            raise DeviceRefusedError(
                f"the charger does not let {self.target.user} write {remote}",
                "set a staging directory that user can write (ssh_staging_dir, or the charger's profile)",
            ) from exc
        except (TimeoutError, OSError, EOFError, paramiko.SSHException) as exc:
            raise LinkLostError(f"link to {self.target} lost during upload: {exc}") from exc
