"""Link faults any link can wear: a cable pulled at a byte, a flipped bit, a slow line, a stalled link.

``LinkFaults`` is the link half of a ``FaultPlan``, counted in bytes the
charger side has received, shared by every front-end: the SSH front-end
counts the image bytes its SFTP server receives (ssh_server.py), and
``FaultyByteStream`` wraps a ``ByteStream`` (transports/byte_stream.py), so
a simulated MCU's SMP front-end, a U-Boot console or a test's loopback fail
the same way. ``link-drop:byte=N`` cuts the link when byte N would arrive,
``rate:BYTES_PER_S`` carries bytes no faster than that, ``hang:byte=N``
stalls the link from byte N until released (or, on a byte stream, the device
stops answering), ``corrupt:byte=N`` flips that byte on its way.
"""

from __future__ import annotations

import threading
import time
from typing import Final

from fieldkit.errors import LinkLostError
from fieldkit.simulator.faults import FaultPlan
from fieldkit.transports.byte_stream import ByteStream, read_exactly_from

LINK_IDLE_S: Final = 0.05  # a rate-limited link idle this long starts afresh
STALL_LIMIT_S: Final = 120.0  # a stalled link gives up in the end, as TCP does


class LinkFaults:
    """Where a link stands against its fault plan: bytes received, cut or not, stalled or not, its pace.

    Thread-safe: the SSH front-end's sessions share one.
    """

    def __init__(self, plan: FaultPlan, idle_credit_s: float = LINK_IDLE_S) -> None:
        self.plan = plan
        # How far behind a paced sender may fall and still be caught up (sleeps overshoot); a link idle
        # longer than this starts afresh, with no credit for the time it sat idle.
        self.idle_credit_s = idle_credit_s
        self.received = 0
        self.cut = False
        self.lock = threading.Lock()
        self.stalled = threading.Event()  # set while a sender waits at the hang byte
        self.released = threading.Event()
        self._link_free_at = 0.0  # monotonic time the rate-limited link is next free

    def admit(self, count: int) -> int:
        """Account for ``count`` bytes arriving; how many get through (fewer when the link is cut among them).

        After the cut nothing more arrives until ``reconnect``.
        """
        with self.lock:
            if self.cut:
                return 0
            limit = self.plan.link_drop_byte
            if limit is not None and self.received + count > limit:
                passed = max(0, limit - self.received)
                self.received += passed
                self.cut = True
                return passed
            self.received += count
            return count

    def reconnect(self) -> None:
        """A new connection after a cut: the fault has happened once, the link works again."""
        with self.lock:
            if self.cut:
                self.cut = False
                limit = self.plan.link_drop_byte
                if limit is not None and limit <= self.received:  # not a cut planned since, further on
                    self.plan.link_drop_byte = None

    def past_hang(self) -> bool:
        with self.lock:
            return self.plan.hang_byte is not None and self.received >= self.plan.hang_byte

    def wait_while_stalled(self) -> None:
        """A stalled link: a sender past the hang byte waits (bounded) until ``release``."""
        deadline = time.monotonic() + STALL_LIMIT_S
        while self.past_hang():
            self.stalled.set()
            if self.released.wait(timeout=0.05):
                return
            if time.monotonic() > deadline:
                raise LinkLostError("the link stalled for too long")

    def stall_at(self, byte: int) -> None:
        """Stall the link once ``byte`` bytes (counted over the link's life) have been received."""
        with self.lock:
            self.released.clear()
            self.stalled.clear()
            self.plan.hang_byte = byte

    def release(self) -> None:
        """End a stall: the link carries data again."""
        with self.lock:
            self.plan.hang_byte = None
        self.released.set()

    def pace(self, count: int) -> None:
        """Hold the sender until ``count`` more bytes fit the link's rate (no-op without a rate fault).

        A clock of when the link is next free, not a sleep per write: time
        spent processing a write does not add to the link's own time, so the
        link carries exactly its rate when busy (as a real one does).
        """
        rate = self.plan.rate_bytes_per_s
        if not rate:
            return
        with self.lock:
            now = time.monotonic()
            if self._link_free_at < now - self.idle_credit_s:  # the link sat idle: no credit for that time
                self._link_free_at = now
            # A sender woken late (sleep and thread switches overshoot) is caught up by the next ones.
            self._link_free_at += count / rate
            wait_s = self._link_free_at - now
        if wait_s > 0:
            time.sleep(wait_s)


class FaultyByteStream:
    """A ``ByteStream`` that delivers what the laptop writes as a faulty link would."""

    def __init__(self, inner: ByteStream, plan: FaultPlan) -> None:
        self.inner = inner
        self.faults = LinkFaults(plan)

    @property
    def plan(self) -> FaultPlan:
        return self.faults.plan

    @property
    def bytes_written(self) -> int:
        """What the laptop has sent so far, counted as the charger received it."""
        return self.faults.received

    @property
    def url(self) -> str:
        return f"{self.inner.url} (with faults)"

    def _check(self) -> None:
        if self.faults.cut:
            raise LinkLostError(f"{self.inner.url}: the link was cut at byte {self.plan.link_drop_byte}")

    def write(self, data: bytes) -> None:
        self._check()
        start = self.faults.received
        passed = self.faults.admit(len(data))
        if passed:
            self.faults.pace(passed)
            self.inner.write(self.plan.corrupt(start, data[:passed]))
        self._check()

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        self._check()
        if self.faults.past_hang():  # a hung device says nothing, however long one waits
            time.sleep(timeout_s)
            return b""
        return self.inner.read(max_bytes, timeout_s)

    def read_exactly(self, count: int, timeout_s: float) -> bytes:
        return read_exactly_from(self, count, timeout_s)

    def discard_input(self) -> None:
        self._check()
        self.inner.discard_input()

    def close(self) -> None:
        self.inner.close()
