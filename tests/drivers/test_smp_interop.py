"""fieldkit's SMP against independent implementations, both over a pseudo-terminal.

- MCUboot's own ``imgtool`` builds the image; fieldkit's reader accepts it and its
  builder (used by the simulator and the demo) writes the same bytes.
- ``smpmgr`` (an mcumgr client fieldkit shares no code with beyond the ``smp``
  message package) uploads an image to fieldkit's simulated board; the board's
  slot then holds it, and the hash the board reports is imgtool's.
- fieldkit's driver then updates the same board to Confirmed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.mcuboot import read_mcuboot_image
from fieldkit.drivers.smp import SmpDriver
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.mcuboot_image import mcuboot_image
from fieldkit.simulator.smp_server import PtyLine
from fieldkit.transports.byte_stream import open_byte_stream
from tests.support.peers import peer_tool
from tests.support.smp import serving


@dataclass
class Board:
    state: Path
    line: PtyLine

    @property
    def address(self) -> str:
        return f"smp+serial://{self.line.path}"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    state = tmp_path / "board"
    SimulatedCharger.create(state, model_named("AMP-WB7"), "WB7-INTEROP")
    with serving(state, "pty") as line:
        assert isinstance(line, PtyLine)
        yield Board(state, line)


def _imgtool_image(tmp_path: Path, version: str, body_bytes: int) -> Path:
    body = tmp_path / f"body-{version}.bin"
    body.write_bytes(ImageHeader("Ampero", "AMP-WB7", "app", version, 3).to_bytes() + os.urandom(body_bytes))
    out = tmp_path / f"app-{version}.bin"
    subprocess.run(
        [str(peer_tool("imgtool")), "create", "--version", version, "--header-size", "0x200", "--pad-header",
         "--slot-size", "0x100000", str(body), str(out)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert out.read_bytes() == mcuboot_image(body.read_bytes(), version), "fieldkit builds what imgtool builds"
    return out


def _slot_one(board: Board) -> bytes:
    charger = SimulatedCharger(board.state)
    return charger.slot_path("app", charger.inactive_slot("app")).read_bytes()


def test_smpmgr_uploads_to_the_simulated_board_and_fieldkit_then_updates_it(board: Board, tmp_path: Path) -> None:
    image = _imgtool_image(tmp_path, "1.9.0", 60_000)
    checked = read_mcuboot_image(io.BytesIO(image.read_bytes()), image.stat().st_size)
    uploaded = subprocess.run(
        [str(peer_tool("smpmgr")), "--port", board.line.path, "--timeout", "5", "upgrade", str(image)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    assert _slot_one(board) == image.read_bytes(), "smpmgr's upload landed whole in the second slot"

    driver = SmpDriver(board.address, open_byte_stream, health_stable_s=0.2, poll_s=0.05, reset_timeout_s=10)
    try:
        listed = driver._image_list()
        assert [(i.slot, i.version) for i in listed] == [(0, "1.8.0"), (1, "1.9.0")]
        assert bytes(listed[1].hash or b"") == checked.image_hash, "the board reports imgtool's image hash"

        newer = _imgtool_image(tmp_path, "2.0.0", 90_000)
        payload = PayloadSource.whole_file(newer, hashlib.sha256(newer.read_bytes()).hexdigest(), "2.0.0")

        async def update() -> None:
            await driver.transfer("app", payload, None)
            assert "check of the whole upload passed" in await driver.verify("app", payload)
            await driver.activate("app", payload.sha256, "mcumgr-smp")
            await driver.reboot()
            assert (await driver.health({"app": "2.0.0"}, 0)).healthy
            await driver.commit({"app": "mcumgr-smp"}, {"app": "2.0.0"})

        asyncio.run(update())
    finally:
        driver.close()
    app = SimulatedCharger(board.state).components["app"]
    assert (app.active, app.committed, app.pending) == (app.committed, app.active, None)
    assert SimulatedCharger(board.state).status()["components"]["app"]["running_version"] == "2.0.0"
