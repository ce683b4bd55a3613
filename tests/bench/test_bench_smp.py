"""A 512 KiB image to an MCU board over SMP at 115200 baud: fieldkit against smpmgr, on the same line.

The board is fieldkit's simulator in a process of its own (`fieldkit sim serial`), on a pseudo-terminal
paced as a UART at 115200 baud (10 bits a byte, each direction on its own), so a second of the line is
what it is on hardware. Two boards: one with 2048-byte buffers (a board configured for DFU), one with
Zephyr's serial defaults (384-byte buffers); both with 4 buffers.

Figures: efficiency = image bytes per second / (baud / 10); the framing ceiling is what one full
request's data is of the bytes it takes on the line (base64, markers, length, CRC, SMP header, CBOR);
and the ratio of fieldkit's speed to smpmgr's. smpmgr's time is its upload command less its own start
and connect (its `image state-read` on the same board). Targets (issue #14): at least 0.70 of the line
rate and 0.95 of the framing ceiling with 2048-byte buffers, at least 1.5 times smpmgr's speed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from smp.image_management import ImageUploadWriteRequest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.smp import SmpDriver
from fieldkit.drivers.smp_link import encode_request
from fieldkit.drivers.smp_upload import chunk_bytes_for
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.mcuboot_image import mcuboot_image
from fieldkit.transports.byte_stream import open_byte_stream
from tests.support.peers import peer_tool

BAUD = 115_200
IMAGE_BYTES = 512 * 1024
FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
BOARDS = [(2048, 4), (384, 4)]


def _image(path: Path, version: str) -> PayloadSource:
    header = ImageHeader("Ampero", "AMP-WB7", "app", version, 3).to_bytes()
    body = header + os.urandom(IMAGE_BYTES - 512 - 40 - len(header))
    path.write_bytes(mcuboot_image(body, version))
    return PayloadSource.whole_file(path, hashlib.sha256(path.read_bytes()).hexdigest(), version)


def _ceiling(buf_size: int, size: int) -> float:
    chunk = chunk_bytes_for(buf_size, size)
    request = ImageUploadWriteRequest(off=size // 2, data=bytes(chunk), sequence=0)
    return chunk / len(encode_request(request))


def _smpmgr(port: str, *argv: str) -> float:
    start = time.perf_counter()
    subprocess.run([str(peer_tool("smpmgr")), "--port", port, "--timeout", "10", *argv],
                   check=True, capture_output=True, timeout=900)  # fmt: skip
    return time.perf_counter() - start


def test_upload_against_smpmgr_at_115200_baud(tmp_path: Path) -> None:
    rows = []
    for buf_size, buf_count in BOARDS:
        board = subprocess.Popen(
            [FIELDKIT, "sim", "serial", "--state", str(tmp_path / f"board-{buf_size}"), "--line", "pty",
             "--baud", str(BAUD), "--buf-size", str(buf_size), "--buf-count", str(buf_count)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert board.stdout is not None
            address = board.stdout.readline().strip()
            port = address.removeprefix("smp+serial://").split("?")[0]
            payload = _image(tmp_path / f"fieldkit-{buf_size}.bin", "1.9.0")
            driver = SmpDriver(address, open_byte_stream)
            try:
                driver._parameters()
                start = time.perf_counter()
                asyncio.run(driver.transfer("app", payload, None))
                fieldkit_s = time.perf_counter() - start
            finally:
                driver.close()
            theirs = _image(tmp_path / f"smpmgr-{buf_size}.bin", "1.9.1")
            overhead_s = _smpmgr(port, "image", "state-read")
            smpmgr_s = _smpmgr(port, "image", "upload", str(theirs.path)) - overhead_s
        finally:
            board.terminate()
            board.wait(timeout=10)
        line_rate = BAUD / 10
        ours, reference = IMAGE_BYTES / fieldkit_s, IMAGE_BYTES / smpmgr_s
        rows.append((buf_size, buf_count, ours, reference, _ceiling(buf_size, IMAGE_BYTES)))
        print(
            f"\nbuf {buf_size}x{buf_count}: fieldkit {ours:7.0f} B/s ({fieldkit_s:5.1f} s), efficiency "
            f"{ours / line_rate:.2f} of the line, {ours / line_rate / rows[-1][4]:.2f} of the framing ceiling "
            f"{rows[-1][4]:.2f}; smpmgr {reference:7.0f} B/s ({smpmgr_s:5.1f} s); ratio {ours / reference:.2f}"
        )
    for buf_size, _count, ours, reference, ceiling in rows:
        efficiency = ours / (BAUD / 10)
        assert efficiency / ceiling >= 0.95, f"buf {buf_size}: {efficiency / ceiling:.2f} of the framing ceiling"
        assert ours / reference >= 1.5, f"buf {buf_size}: only {ours / reference:.2f} times smpmgr"
        if buf_size >= 2048:
            assert efficiency >= 0.70, f"buf {buf_size}: {efficiency:.2f} of the line rate"
