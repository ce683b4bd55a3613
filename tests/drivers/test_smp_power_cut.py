"""A power cut of an SMP board in the middle of writing its image: nothing torn is ever tested or run.

The board is `fieldkit sim serial` in a process of its own; `power-cut:byte=N`
ends that process as losing power would while byte N of the image is being
written. Powered again, MCUboot boots the image it had, the upload state (in
RAM) is gone, and the torn slot is not offered as an image; the update
starts the upload again and goes on to Confirmed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.smp import SmpDriver
from fieldkit.errors import TransportError
from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.mcuboot_image import mcuboot_image
from fieldkit.transports.byte_stream import open_byte_stream

FIELDKIT = str(Path(sys.executable).with_name("fieldkit"))
CUT_AT = 150_000


def _power_on(state: Path, *faults: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [FIELDKIT, "sim", "serial", "--state", str(state), "--line", "socket", "--turnaround-ms", "0",
         "--flash-rate", "0", *(f"--fault={f}" for f in faults)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def test_a_power_cut_while_writing_leaves_the_good_image_and_the_update_starts_again(tmp_path: Path) -> None:
    state = tmp_path / "board"
    SimulatedCharger.create(state, model_named("AMP-WB7"), "WB7-POWER")
    body = ImageHeader("Ampero", "AMP-WB7", "app", "1.9.0", 3).to_bytes() + os.urandom(400_000)
    image = tmp_path / "app.bin"
    image.write_bytes(mcuboot_image(body, "1.9.0"))
    payload = PayloadSource.whole_file(image, hashlib.sha256(image.read_bytes()).hexdigest(), "1.9.0")

    board, address = _power_on(state, f"power-cut:byte={CUT_AT}")
    driver = SmpDriver(address, open_byte_stream, answer_timeout_s=1.0, attempts=1)
    with pytest.raises(TransportError):
        asyncio.run(driver.transfer("app", payload, None))
    driver.close()
    assert board.wait(timeout=30) == 137, "the board lost power mid-write"
    torn = SimulatedCharger(state)
    assert torn.slot_path("app", torn.inactive_slot("app")).stat().st_size <= CUT_AT + 4096

    board, address = _power_on(state)  # power is back: MCUboot boots what it had
    driver = SmpDriver(address, open_byte_stream, health_stable_s=0.2, poll_s=0.05, reset_timeout_s=10)
    try:
        listed = driver._image_list()
        assert [(i.slot, i.version) for i in listed] == [(0, "1.8.0")], "a torn slot is not an image"

        async def update() -> int:
            sent = await driver.transfer("app", payload, None)
            await driver.verify("app", payload)
            await driver.activate("app", payload.sha256, "mcumgr-smp")
            await driver.reboot()
            assert (await driver.health({"app": "1.9.0"}, 0)).healthy
            await driver.commit({"app": "mcumgr-smp"}, {"app": "1.9.0"})
            return sent

        assert asyncio.run(update()) == payload.size_bytes, "the board forgot the upload: it was sent again whole"
    finally:
        driver.close()
        board.terminate()
        board.wait(timeout=10)
    app = SimulatedCharger(state).status()["components"]["app"]
    assert (app["running_version"], app["state"]) == ("1.9.0", "committed")
