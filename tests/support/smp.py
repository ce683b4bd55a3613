"""Simulated SMP boards for tests, served from a thread of the test process.

A board spends a turnaround and its flash's write time on every request
(simulator/smp_server.py), as hardware does; the benchmark keeps them. Tests of
behaviour turn them off (``FAST_BOARD``), so hundreds of requests take
milliseconds. In-process so a test can read and change the board's line
(its faults, its counters) between attempts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal, TypedDict

from fieldkit.simulator.faults import FaultPlan
from fieldkit.simulator.smp_server import PtyLine, SmpBoard, TcpLine


class BoardTimings(TypedDict):
    turnaround_s: float
    flash_bytes_per_s: int | None


FAST_BOARD: Final[BoardTimings] = {"turnaround_s": 0.0, "flash_bytes_per_s": None}


@contextmanager
def serving(
    state: Path, line: Literal["pty", "socket"], faults: list[str] | None = None, buf_size: int = 2048
) -> Iterator[PtyLine | TcpLine]:
    """The board in ``state`` (created already) on a pty or a TCP port, fast, with 4 buffers of ``buf_size``."""
    board = SmpBoard(state, FaultPlan.parse(faults or []), buf_size=buf_size, buf_count=4, **FAST_BOARD)
    served: PtyLine | TcpLine = PtyLine(board) if line == "pty" else TcpLine(board)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.stop()
        thread.join(timeout=10)
