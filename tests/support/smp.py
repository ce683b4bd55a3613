"""Simulated SMP boards for tests that are about the protocol, not the clock.

A board spends a turnaround and its flash's write time on every request
(simulator/smp_server.py), as hardware does; the benchmark keeps them. Tests of
behaviour turn them off, so hundreds of requests take milliseconds.
"""

from __future__ import annotations

from typing import Final, TypedDict


class BoardTimings(TypedDict):
    turnaround_s: float
    flash_bytes_per_s: int | None


FAST_BOARD: Final[BoardTimings] = {"turnaround_s": 0.0, "flash_bytes_per_s": None}
