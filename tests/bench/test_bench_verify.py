"""Bundle verification of a 256 MiB payload vs `sha256sum` of the same bytes.

Targets (issue #2): throughput ratio >= 0.85 against sha256sum measured in the
same run, and peak RSS of the verifying process < 100 MiB. The fieldkit figure
is the whole `fieldkit bundle verify` command, interpreter start-up included.

Run with `make bench`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fieldkit.bundles.container import PayloadSource, write_container
from fieldkit.bundles.signatures import encode_signatures
from tests.bench.conftest import best_of
from tests.support.bundle_lab import BundleLab

PAYLOAD_BYTES = 256 * 1024 * 1024
MIB = 1024 * 1024


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")
def test_verify_throughput_and_memory(tmp_path: Path) -> None:
    lab = BundleLab(tmp_path / "lab")
    payload = tmp_path / "payload.img"
    with payload.open("wb") as handle:
        for _ in range(PAYLOAD_BYTES // MIB):
            handle.write(os.urandom(MIB))
    import hashlib
    import json

    digest = hashlib.sha256()
    with payload.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    manifest = lab.manifest({"rootfs": b""})
    manifest["components"][0].update(size_bytes=PAYLOAD_BYTES, sha256=digest.hexdigest())
    raw = json.dumps(manifest).encode()
    bundle = tmp_path / "big.fwbundle"
    write_container(
        bundle,
        raw,
        [PayloadSource("payloads/rootfs", payload)],
        encode_signatures([lab.signature(lab.release, raw)]),
    )

    fieldkit = str(Path(sys.executable).with_name("fieldkit"))
    env = {**os.environ, "FIELDKIT_HOME": str(tmp_path / "home")}
    verify = [fieldkit, "bundle", "verify", str(bundle), "--trust-store", str(lab.store_path)]
    # Warm the page cache for both, so both read from memory and only hashing speed is compared.
    best_of(1, ["sha256sum", str(payload)])
    best_of(1, verify, env)
    reference = best_of(3, ["sha256sum", str(payload)])
    ours = best_of(3, verify, env)

    # Peak RSS from the verifying process's own VmHWM: wait4's ru_maxrss would carry over the
    # high-water mark of this (large) pytest process, which Linux keeps across fork and exec.
    probe = (
        "import sys; from fieldkit.cli.main import main; code = main(sys.argv[1:]); "
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]); sys.exit(code)"
    )
    measured = subprocess.run(
        [sys.executable, "-c", probe, *verify[1:]], env=env, capture_output=True, text=True, check=True
    )
    peak_rss_bytes = int(measured.stdout.split()[-1]) * 1024

    ratio = reference.seconds / ours.seconds
    print(f"\nsha256sum          {PAYLOAD_BYTES / MIB / reference.seconds:8.1f} MiB/s ({reference.seconds:.3f} s)")
    print(f"fieldkit verify    {PAYLOAD_BYTES / MIB / ours.seconds:8.1f} MiB/s ({ours.seconds:.3f} s, whole command)")
    print(f"throughput ratio   {ratio:8.2f}   (target >= 0.85)")
    print(f"peak RSS           {peak_rss_bytes / MIB:8.1f} MiB (target < 100 MiB)")
    assert ratio >= 0.85
    assert peak_rss_bytes < 100 * MIB
