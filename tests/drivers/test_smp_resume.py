"""An SMP upload interrupted again and again: it goes on where the board stands, and never lands wrong.

The board keeps its upload state in RAM (as Zephyr's img_mgmt does): a link
drop or a killed laptop process leaves it, and the next upload continues at
the offset the board reports. What an interruption may cost is the window of
requests in flight that never reached the board: none of what the board
already has is sent again, and at most one frame's worth arrives twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.smp import SmpDriver
from fieldkit.errors import LinkLostError
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.mcuboot_image import mcuboot_image
from fieldkit.simulator.smp_server import SmpBoard, TcpLine
from fieldkit.transports.byte_stream import open_byte_stream
from tests.support.smp import serving

IMAGE_BODY_BYTES = 600_000
LINK_DROPS = 12
KILLS = 8
BUF_SIZE = 2048


@dataclass
class Site:
    board: SmpBoard
    line: TcpLine
    image: Path
    payload: PayloadSource

    @property
    def address(self) -> str:
        return f"smp+socket://127.0.0.1:{self.line.port}"

    def driver(self) -> SmpDriver:
        # Generous: a retransmission here must come from a lost frame, never from a slow, loaded machine.
        return SmpDriver(self.address, open_byte_stream, answer_timeout_s=10.0)

    def slot_one(self) -> bytes:
        charger = SimulatedCharger(self.board.state_dir)
        return charger.slot_path("app", charger.inactive_slot("app")).read_bytes()


def _site(tmp_path: Path, faults: list[str]) -> Iterator[Site]:
    state = tmp_path / "board"
    SimulatedCharger.create(state, model_named("AMP-WB7"), "WB7-RESUME")
    body = ImageHeader("Ampero", "AMP-WB7", "app", "1.9.0", 3).to_bytes() + os.urandom(IMAGE_BODY_BYTES)
    image = tmp_path / "app.bin"
    image.write_bytes(mcuboot_image(body, "1.9.0"))
    payload = PayloadSource.whole_file(image, hashlib.sha256(image.read_bytes()).hexdigest(), "1.9.0")
    with serving(state, "socket", faults, BUF_SIZE) as line:
        assert isinstance(line, TcpLine)
        yield Site(line.board, line, image, payload)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, [])


def test_twenty_interruptions_each_cost_at_most_one_frame(site: Site) -> None:
    rng = random.Random(20261206)
    size = site.payload.size_bytes
    wasted_per_interruption: list[int] = []
    done_at: list[int] = []

    for _drop in range(LINK_DROPS):  # the cable comes out at a random byte of the line
        site.board.rx.plan.link_drop_byte = site.board.rx.received + rng.randrange(4_000, 40_000)
        wasted_before = site.board.data_received - site.board.data_written
        driver = site.driver()
        with pytest.raises(LinkLostError):
            asyncio.run(driver.transfer("app", site.payload, None))
        driver.close()
        wasted_per_interruption.append(site.board.data_received - site.board.data_written - wasted_before)
        assert site.board.session is not None, "a link drop leaves the board's upload state"
        done_at.append(site.board.session.off)

    for _kill in range(KILLS):  # the laptop process dies at a random moment of the upload
        site.board.rx.stall_at(site.board.rx.received + rng.randrange(4_000, 40_000))
        wasted_before = site.board.data_received - site.board.data_written
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.support.smp_child", site.address, str(site.image), "1.9.0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        if not site.board.rx.stalled.wait(timeout=60):
            child.kill()
            raise AssertionError(f"the upload never reached the kill point: {child.communicate()[1]!r}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        site.board.rx.release()
        wasted_per_interruption.append(site.board.data_received - site.board.data_written - wasted_before)
        assert site.board.session is not None
        done_at.append(site.board.session.off)

    assert done_at == sorted(done_at) and done_at[-1] < size, "each attempt went on from where the board stood"
    wasted_before = site.board.data_received - site.board.data_written
    driver = site.driver()
    try:
        sent = asyncio.run(driver.transfer("app", site.payload, None))
        assert asyncio.run(driver.verify("app", site.payload))
    finally:
        driver.close()
    # The board may still have written what reached it before the last kill: at most the rest is sent.
    assert sent <= size - done_at[-1], "the last attempt sent only what the board did not have"
    wasted_per_interruption.append(site.board.data_received - site.board.data_written - wasted_before)
    assert len(wasted_per_interruption) >= 20
    assert max(wasted_per_interruption) <= BUF_SIZE, f"bytes the board had to drop: {wasted_per_interruption}"
    assert site.slot_one() == site.image.read_bytes()


@pytest.fixture
def noisy_site(tmp_path: Path) -> Iterator[Site]:
    rng = random.Random(6)
    faults = [f"drop:byte={rng.randrange(1_000, 800_000)}" for _ in range(12)]
    faults += [f"noise:byte={rng.randrange(1_000, 800_000)}" for _ in range(12)]
    yield from _site(tmp_path, faults)


def test_dropped_and_noise_bytes_never_produce_a_wrong_image(noisy_site: Site) -> None:
    driver = noisy_site.driver()
    try:
        asyncio.run(driver.transfer("app", noisy_site.payload, None))
        assert "check of the whole upload passed" in asyncio.run(driver.verify("app", noisy_site.payload))
    finally:
        driver.close()
    assert noisy_site.slot_one() == noisy_site.image.read_bytes()
    assert noisy_site.board.data_received > noisy_site.board.data_written, "the faults really cost frames"
