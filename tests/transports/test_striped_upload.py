"""Uploads spread over several channels, against real dropbear with its default 24 KiB window (the rig's)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.linux_ssh import LinuxSshDriver
from fieldkit.errors import DeviceRefusedError
from fieldkit.transports.ssh import SshSession, SshTarget
from fieldkit.transports.striped_upload import BLOCK_BYTES
from tests.support.rig import LinuxRig, rig_missing

pytestmark = pytest.mark.skipif(rig_missing() is not None, reason=rig_missing() or "")
MIB = 1024 * 1024


class Interrupted(Exception):
    """Stands for a link that broke mid-upload."""


@pytest.fixture(scope="module")
def dropbear(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinuxRig]:
    rig = LinuxRig(tmp_path_factory.mktemp("striped") / "rig", "dropbear").prepare()
    rig.start()
    yield rig
    rig.power_off()


@pytest.fixture
def payload(tmp_path: Path) -> PayloadSource:
    path = tmp_path / "image.bin"
    path.write_bytes(os.urandom(24 * MIB + 12345))
    return PayloadSource.whole_file(path, hashlib.sha256(path.read_bytes()).hexdigest())


def _session(rig: LinuxRig, tmp_path: Path, streams: int) -> SshSession:
    target = SshTarget(rig.user, "127.0.0.1", rig.port)
    return SshSession(
        target, tmp_path / "known_hosts", key_file=rig.client_key, accept_new_host_key=True, upload_streams=streams
    )


def _staged(rig: LinuxRig, name: str) -> Path:
    return rig.dir / "var-tmp" / "fieldkit-staging" / name


def test_a_striped_upload_arrives_whole_and_reports_only_contiguous_progress(
    dropbear: LinuxRig, tmp_path: Path, payload: PayloadSource
) -> None:
    reported: list[int] = []
    with _session(dropbear, tmp_path, 4) as ssh:
        ssh.run("mkdir -p /var/tmp/fieldkit-staging")
        assert ssh.upload(payload.path, "/var/tmp/fieldkit-staging/whole.img", on_progress=reported.append) == (
            payload.size_bytes
        )
    assert hashlib.sha256(_staged(dropbear, "whole.img").read_bytes()).hexdigest() == payload.sha256
    assert reported == sorted(reported) and reported[-1] == payload.size_bytes
    # Block-aligned progress shows the striped path ran (one channel reports every 128 KiB slice).
    assert all(p % BLOCK_BYTES == 0 for p in reported[:-1]), "progress never counts a block beyond a gap"


def test_an_interrupted_striped_upload_resumes_from_a_verified_prefix(
    dropbear: LinuxRig, tmp_path: Path, payload: PayloadSource
) -> None:
    target = SshTarget(dropbear.user, "127.0.0.1", dropbear.port)

    def connect() -> SshSession:
        return SshSession(
            target, tmp_path / "known_hosts", key_file=dropbear.client_key, accept_new_host_key=True, upload_streams=4
        )

    driver = LinuxSshDriver(connect, staging_dir="/var/tmp/fieldkit-staging")

    def break_halfway(position: int) -> None:
        if position >= payload.size_bytes // 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        asyncio.run(driver.transfer("rootfs", payload, break_halfway))
    driver.close()
    staged = _staged(dropbear, f"{payload.sha256}.img")
    left = staged.stat().st_size
    assert 0 < left < payload.size_bytes
    sent = asyncio.run(driver.transfer("rootfs", payload, None))
    assert 0 < sent < payload.size_bytes, f"resumed from a verified prefix, not from zero ({sent} sent)"
    asyncio.run(driver.verify("rootfs", payload))
    driver.close()


def test_a_staging_directory_the_login_user_cannot_write_is_a_refusal_not_a_lost_link(
    dropbear: LinuxRig, tmp_path: Path, payload: PayloadSource
) -> None:
    with _session(dropbear, tmp_path, 4) as ssh, pytest.raises(DeviceRefusedError, match="does not let charger write"):
        ssh.upload(payload.path, "/etc/not-yours.img")
