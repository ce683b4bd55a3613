"""Benchmarks print figures and assert ratios against a reference measured in the same run."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    seconds: float
    max_rss_bytes: int


def timed_process(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run a command to completion; wall time and ru_maxrss from wait4.

    ru_maxrss includes the high-water mark the child inherited from this process
    at fork, so it is an upper bound; read VmHWM in the child for its own peak.
    """
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise AssertionError(f"{argv[0]} failed ({process.returncode}): {stderr}")
    return Run(elapsed, usage.ru_maxrss * 1024)


def best_of(count: int, argv: list[str], env: dict[str, str] | None = None) -> Run:
    runs = [timed_process(argv, env) for _ in range(count)]
    return Run(min(r.seconds for r in runs), max(r.max_rss_bytes for r in runs))
