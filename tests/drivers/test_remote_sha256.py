"""The charger-side SHA-256 command: OpenSSL when the charger has it, sha256sum otherwise, same answer."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from fieldkit.drivers.linux_ssh import remote_sha256

TOOLS = ("head", "sha256sum", "openssl")


def _charger_path(tmp_path: Path, with_openssl: bool) -> str:
    """A PATH holding only the tools a minimal charger has: head, sha256sum, and openssl if asked."""
    bin_dir = tmp_path / ("bin-openssl" if with_openssl else "bin-plain")
    bin_dir.mkdir()
    for tool in TOOLS if with_openssl else TOOLS[:2]:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"needs {tool} on this machine")
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _run(command: str, path: str) -> tuple[int, str]:
    done = subprocess.run(
        ["/bin/sh", "-c", command], env={**os.environ, "PATH": path}, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout


@pytest.mark.parametrize("with_openssl", [True, False], ids=["openssl", "sha256sum"])
def test_file_and_prefix_hash_the_same_with_either_tool(tmp_path: Path, with_openssl: bool) -> None:
    path = _charger_path(tmp_path, with_openssl)
    data = os.urandom(300_000)
    image = tmp_path / "staged image.img"  # a space: the path must arrive quoted
    image.write_bytes(data)
    status, out = _run(remote_sha256(shlex.quote(str(image))), path)
    assert status == 0 and out.split()[0] == hashlib.sha256(data).hexdigest()
    status, out = _run(f"head -c 1000 {shlex.quote(str(image))} | {remote_sha256()}", path)
    assert status == 0 and out.split()[0] == hashlib.sha256(data[:1000]).hexdigest()


@pytest.mark.parametrize("with_openssl", [True, False], ids=["openssl", "sha256sum"])
def test_a_missing_file_fails_with_either_tool(tmp_path: Path, with_openssl: bool) -> None:
    status, _ = _run(remote_sha256(shlex.quote(str(tmp_path / "absent.img"))), _charger_path(tmp_path, with_openssl))
    assert status != 0
