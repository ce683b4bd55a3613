"""A hostile crowd against a real back office on loopback, while an honest laptop syncs.

``Crowd`` keeps ``strangers`` requests with invented bearer tokens and
``members`` requests with a real laptop token in flight at all times (each
answered request is replaced at once), from a thread with its own event
loop; another thread samples ``/health`` every ``HEALTH_EVERY_S`` on its
own connection, recording the slowest answer. Both stop by themselves after
``max_s``, or when ``stop`` is called.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Final

import httpx

HEALTH_EVERY_S: Final = 0.1


@dataclass
class CrowdReport:
    statuses: Counter[str] = field(default_factory=Counter)
    health_samples: int = 0
    slowest_health_s: float = 0.0
    health_failures: int = 0


class Crowd:
    def answered(self, role: str) -> set[str]:
        """What ``role`` was told: status codes, or transport errors by name."""
        return {key.split(" ", 1)[1] for key in self.report.statuses if key.startswith(role + " ")}

    def __init__(
        self, base_url: str, verify: ssl.SSLContext | bool, laptop_token: str, strangers: int, members: int
    ) -> None:
        self.base_url, self.verify, self.token = base_url, verify, laptop_token
        self.strangers, self.members = strangers, members
        self.report = CrowdReport()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, max_s: float = 300.0) -> None:
        # The probe connects first and runs on its own thread: what it measures is the service answering, not
        # the crowd's own event loop (busy with hundreds of TLS handshakes) getting round to sending it.
        probe = httpx.Client(base_url=self.base_url, verify=self.verify, timeout=10)
        probe.get("/api/v1/health")
        self._threads = [
            threading.Thread(target=self._probe_health, args=(probe, max_s), daemon=True),
            threading.Thread(target=lambda: asyncio.run(self._run(max_s)), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> CrowdReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return self.report

    def _probe_health(self, probe: httpx.Client, max_s: float) -> None:
        deadline = time.monotonic() + max_s
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                start = time.monotonic()
                try:
                    ok = probe.get("/api/v1/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.monotonic() - start
                self.report.health_samples += 1
                self.report.slowest_health_s = max(self.report.slowest_health_s, took)
                self.report.health_failures += not ok
                self._stop.wait(max(0.0, HEALTH_EVERY_S - took))
        finally:
            probe.close()

    async def _run(self, max_s: float) -> None:
        deadline = time.monotonic() + max_s
        limits = httpx.Limits(max_connections=self.strangers + self.members, max_keepalive_connections=None)
        async with httpx.AsyncClient(base_url=self.base_url, verify=self.verify, limits=limits, timeout=60) as crowd:

            async def stranger() -> None:
                body = b'{"laptop_id": "laptop-0000000000000000", "batch_id": "' + b"0" * 32 + b'", "entries": []}'
                while not self._stop.is_set() and time.monotonic() < deadline:
                    headers = {"Authorization": f"Bearer fk1_{secrets.token_urlsafe(32)}"}
                    await self._count("stranger", crowd.post("/api/v1/sync/batches", content=body, headers=headers))

            async def member() -> None:
                headers = {"Authorization": f"Bearer {self.token}"}
                while not self._stop.is_set() and time.monotonic() < deadline:
                    await self._count("member", crowd.get("/api/v1/sync/status", headers=headers))

            tasks = [stranger() for _ in range(self.strangers)] + [member() for _ in range(self.members)]
            await asyncio.gather(*tasks)

    async def _count(self, role: str, request: Awaitable[httpx.Response]) -> None:
        """Tally ``"<role> <status>"``, or ``"<role> <error>"`` when the connection failed."""
        try:
            response = await request
            self.report.statuses[f"{role} {response.status_code}"] += 1
        except httpx.HTTPError as exc:
            self.report.statuses[f"{role} {type(exc).__name__}"] += 1
