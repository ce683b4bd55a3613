"""What keeps the back office answering while strangers hammer it.

Three rules, each from a freeze seen under a small crowd (60 bogus-token
batch posts stopped ``/health`` for minutes):

- **Invented tokens cannot take the database pool.** ``KnownTokens``
  remembers the digests of credentials it has seen exist. A digest it has
  not seen is looked up in one of ``MISS_LANES`` lanes; when they are all
  taken the request is told "busy" (503) at once instead of queueing for a
  connection. A known digest is still checked against the database
  (revocation, kind) by the handler.
- **Bounded concurrency, quick 503.** ``ConcurrencyLimit`` lets at most as
  many requests work as the database pool has connections; one that cannot
  get a slot within ``wait_s`` gets 503 and ``Retry-After``, instead of a
  thread parked on the pool for its whole timeout. ``/health`` is exempt.
- **Bodies are counted as they stream** (``read_body_limited``), chunked or
  not, and refused past the limit before they are buffered.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Literal

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from fieldkit.backoffice.db import Credential

MISS_LANES: Final = 2  # concurrent database lookups of tokens the service has not seen yet
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class KnownTokens:
    """Digests of credentials seen to exist; unknown ones are looked up in a narrow lane that never queues.

    A known digest goes on to the full check (revocation, kind) in the handler. An unknown one is looked up
    by at most ``lanes`` callers at a time; a caller finding every lane taken is told "busy" (503) at once,
    so a flood of invented tokens costs at most ``lanes`` connections and never waits for one itself.
    """

    def __init__(self, sessions: sessionmaker[Session], lanes: int = MISS_LANES) -> None:
        self._sessions = sessions
        self._digests: set[str] = set()
        self._lanes = threading.BoundedSemaphore(lanes)

    def check(self, digest: str) -> Literal["known", "unknown", "busy"]:
        if digest in self._digests:
            return "known"
        if not self._lanes.acquire(blocking=False):
            return "busy"
        try:
            with self._sessions() as session:
                exists = session.get(Credential, digest) is not None
        finally:
            self._lanes.release()
        if not exists:
            return "unknown"
        self._digests.add(digest)  # revoked later? the handler's full check still refuses it
        return "known"


class ConcurrencyLimit:
    """ASGI middleware: at most ``limit`` requests at work; the rest wait ``wait_s``, then get 503."""

    def __init__(self, app: ASGIApp, limit: int, wait_s: float, exempt: frozenset[str]) -> None:
        self.app = app
        self.limit = limit
        self.wait_s = wait_s
        self.exempt = exempt
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # created on the server's own event loop
            self._slots = asyncio.Semaphore(self.limit)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_s)
        except TimeoutError:
            await _busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()


BUSY_DETAIL: Final = "the back office is busy; retry shortly"
# The request body was never read, so the server closes this connection: say so, or a client reusing it
# would find it gone.
BUSY_HEADERS: Final = {"Retry-After": "1", "Connection": "close"}


def busy_error() -> HTTPException:
    """The 503 a handler raises when a lane is taken: the same answer ``ConcurrencyLimit`` gives."""
    return HTTPException(503, BUSY_DETAIL, headers=dict(BUSY_HEADERS))


async def _busy(send: Send) -> None:
    body = json.dumps({"code": "busy", "detail": BUSY_DETAIL}, separators=(",", ":")).encode()
    headers = [(name.lower().encode(), value.encode()) for name, value in BUSY_HEADERS.items()]
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                *headers,
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body_limited(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as more than ``max_bytes`` arrived (chunked or not)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"a request body may hold at most {max_bytes} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise HTTPException(413, f"a request body may hold at most {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
