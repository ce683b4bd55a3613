"""The SSH transport against real OpenSSH sshd on loopback: pinning, auth, exec, resumable SFTP."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from paramiko.common import AUTH_FAILED

from fieldkit.errors import (
    AuthenticationFailedError,
    HostKeyChangedError,
    HostKeyUnknownError,
    HostUnreachableError,
    UsageError,
)
from fieldkit.transports.ssh import SshSession, SshTarget
from tests.support.backoffice import free_port
from tests.support.sshd import Sshd, keygen, keygen_fingerprint, sshd_available

pytestmark = pytest.mark.skipif(not sshd_available(), reason="needs OpenSSH sshd (apt-get install openssh-server)")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    server = Sshd(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


def session(sshd: Sshd, known_hosts: Path, **options: object) -> SshSession:
    target = SshTarget(sshd.user, "127.0.0.1", sshd.port)
    return SshSession(target, known_hosts, key_file=sshd.client_key, **options)  # type: ignore[arg-type]


def test_first_contact_shows_the_fingerprint_and_pins_only_when_accepted(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    expected = keygen_fingerprint(sshd.dir / "host_key.pub")
    with pytest.raises(HostKeyUnknownError) as caught:
        session(sshd, known).connect()
    assert caught.value.fingerprint == expected and expected in caught.value.message
    assert not known.exists()
    seen: list[str] = []

    def confirm(_host: str, shown: str) -> bool:
        seen.append(shown)
        return True

    with session(sshd, known, confirm_host_key=confirm) as ssh:
        assert ssh.run("echo hello").text == "hello\n"
    assert seen == [expected]
    assert f"[127.0.0.1]:{sshd.port}" in known.read_text()
    with session(sshd, known) as ssh:  # pinned now: no question asked
        assert ssh.run("exit 3").exit_status == 3


def test_a_changed_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    with session(sshd, known, accept_new_host_key=True):
        pass
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    with pytest.raises(HostKeyChangedError, match="is pinned for it"):
        session(sshd, known, accept_new_host_key=True).connect()  # accepting NEW keys never accepts CHANGED ones


def test_wrong_key_and_closed_port_are_clear_errors(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    stranger = keygen(tmp_path / "stranger")
    target = SshTarget(sshd.user, "127.0.0.1", sshd.port)
    with pytest.raises(AuthenticationFailedError):
        SshSession(target, known, key_file=stranger, accept_new_host_key=True).connect()
    with pytest.raises(HostUnreachableError):
        SshSession(SshTarget("root", "127.0.0.1", free_port()), known, key_file=stranger, connect_timeout_s=2).connect()


def test_sftp_upload_resumes_at_an_offset(sshd: Sshd, tmp_path: Path) -> None:
    payload = tmp_path / "image.bin"
    payload.write_bytes(os.urandom(1_000_000))
    remote = str(tmp_path / "remote" / "staged.bin")
    (tmp_path / "remote").mkdir()
    progress: list[int] = []
    with session(sshd, tmp_path / "known_hosts", accept_new_host_key=True) as ssh:
        assert ssh.remote_size(remote) is None
        ssh.upload(payload, remote)
        Path(remote).write_bytes(Path(remote).read_bytes()[:300_000] + b"garbage after the verified prefix")
        assert ssh.upload(payload, remote, offset=300_000, on_progress=progress.append) == 1_000_000
        assert ssh.remote_size(remote) == 1_000_000
        remote_hash = ssh.run(f"sha256sum {remote}").text.split()[0]
    assert remote_hash == hashlib.sha256(payload.read_bytes()).hexdigest()
    assert progress[0] > 300_000 and progress[-1] == 1_000_000


@pytest.mark.parametrize("address", ["http://h", "ssh://host", "ssh://u@host:99999", "u@host"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(UsageError):
        SshTarget.parse(address)


def test_addresses_parse() -> None:
    assert SshTarget.parse("ssh://root@charger-7.site.example:2222") == SshTarget(
        "root", "charger-7.site.example", 2222
    )
    assert SshTarget.parse("ssh://admin@[::1]").port == 22


def test_concurrent_pins_all_survive(tmp_path: Path) -> None:
    import threading

    import paramiko

    from fieldkit.transports.ssh import pin_host_key

    known = tmp_path / "known_hosts"
    keys = [paramiko.Ed25519Key.from_private_key_file(str(keygen(tmp_path / f"host{i}"))) for i in range(8)]
    threads = [
        threading.Thread(target=pin_host_key, args=(known, f"[127.0.0.1]:{2200 + i}", key))
        for i, key in enumerate(keys)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pinned = paramiko.HostKeys(str(known))
    assert all(pinned.lookup(f"[127.0.0.1]:{2200 + i}") for i in range(8))


class _ShutsDownDuringLogin(paramiko.ServerInterface):
    """An SSH server that goes away while judging the login, as a charger shutting down for a reboot does."""

    def __init__(self) -> None:
        self.transport: paramiko.Transport | None = None

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        assert self.transport is not None
        self.transport.close()
        return AUTH_FAILED


def test_a_server_closing_mid_login_is_a_lost_link_not_refused_credentials(sshd: Sshd, tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    host_key = paramiko.Ed25519Key.from_private_key_file(str(keygen(tmp_path / "host")))

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            server = _ShutsDownDuringLogin()
            transport = paramiko.Transport(connection)
            server.transport = transport
            transport.add_server_key(host_key)
            transport.start_server(server=server)
            transport.join(timeout=30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    target = SshTarget("root", "127.0.0.1", listener.getsockname()[1])
    with pytest.raises(HostUnreachableError, match="closed the connection while we logged in"):
        SshSession(target, tmp_path / "known", key_file=sshd.client_key, accept_new_host_key=True).connect()
    thread.join(timeout=30)
