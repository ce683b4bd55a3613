"""Where a Linux charger's images are staged: the charger may name its own directory.

Several simulated chargers run on one host (the demo runs four), and a
shared staging directory would have two uploads of the same bundle write
one file. So a charger that ships the helpers names its directory in
``charger-identity --json``; the driver stages there, and takes only a
plain absolute path from it.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from fieldkit.domain import PayloadSource
from fieldkit.drivers.linux_ssh import reported_staging_dir
from fieldkit.errors import DeviceRefusedError
from fieldkit.simulator.device import SimulatedCharger
from tests.support.drivers import loopback_driver
from tests.support.simssh import running_sim


def test_a_named_directory_is_taken_and_none_means_the_setting() -> None:
    assert reported_staging_dir("/data/fieldkit-staging") == "/data/fieldkit-staging"
    assert reported_staging_dir(None) == ""


@pytest.mark.parametrize(
    "hostile",
    ["relative/dir", "/var/tmp/../../etc", "/var/tmp/a b", "/tmp/$(reboot)", "/tmp/x;rm", "/" + "a" * 300, "/"],
)
def test_anything_but_a_plain_absolute_path_is_refused_with_what_to_fix(hostile: str) -> None:
    with pytest.raises(DeviceRefusedError, match="staging directory") as refused:
        reported_staging_dir(hostile)
    assert refused.value.hint is not None and "absolute path" in refused.value.hint


def test_two_simulated_chargers_on_one_host_stage_in_their_own_directories(tmp_path: Path) -> None:
    image = tmp_path / "image.bin"
    image.write_bytes(b"same bundle for both chargers" * 4096)
    payload = PayloadSource(image, 0, image.stat().st_size, hashlib.sha256(image.read_bytes()).hexdigest())
    key = tmp_path / "client_key"
    staged = []
    for name in ("first", "second"):
        with running_sim(tmp_path / name, serial=f"SN-{name}", client_key=key) as sim:
            driver = loopback_driver("root", sim.server.port, key, tmp_path)
            try:
                asyncio.run(driver.transfer("rootfs", payload, None))
                own = SimulatedCharger(sim.state).staging_dir
                assert driver.staging_dir == str(own)
                staged.append(own / f"{payload.sha256}.img")
            finally:
                driver.close()
    assert all(path.read_bytes() == image.read_bytes() for path in staged)
    assert staged[0] != staged[1]
    assert not (tmp_path / "staging").exists(), "the laptop's setting is only for chargers that name none"
