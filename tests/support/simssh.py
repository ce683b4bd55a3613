"""The simulator's own SSH endpoint, served from a thread of the test process.

In-process so a test can change the link's faults between attempts and read
how many bytes the charger received (its link budget).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fieldkit.simulator.catalog import model_named
from fieldkit.simulator.device import SimulatedCharger
from fieldkit.simulator.ssh_server import SimulatedSshCharger, write_openssh_key


@dataclass
class RunningSim:
    server: SimulatedSshCharger
    state: Path
    client_key: Path

    @property
    def address(self) -> str:
        return f"ssh://root@127.0.0.1:{self.server.port}"


@contextmanager
def running_sim(
    state: Path,
    model: str = "VQ-AC22",
    faults: tuple[str, ...] = (),
    serial: str = "SN-SIM",
    client_key: Path | None = None,
) -> Iterator[RunningSim]:
    """Serve a charger (created on first use) on a free loopback port; ``client_key`` may be shared."""
    if not (state / "state.json").exists():
        SimulatedCharger.create(state, model_named(model), serial)
    client_key = client_key or state / "client_key"
    public = client_key.with_name(client_key.name + ".pub")
    if not public.exists():
        public.write_bytes(write_openssh_key(client_key, "test-client"))
    server = SimulatedSshCharger(state, 0, [public], list(faults))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningSim(server, state, client_key)
    finally:
        server.stop()
        thread.join(timeout=5)
