"""Link faults any byte link can wear: a cable pulled at a byte, a flipped bit, a slow line, a hung device.

Wraps a ``ByteStream`` (transports/byte_stream.py), so a simulated MCU's SMP
front-end, a U-Boot console, or a test's loopback fail the same way, counted
in bytes the charger side has received. The plan is the simulator's
``FaultPlan``: ``link-drop:byte=N`` cuts the link when byte N would arrive,
``corrupt:byte=N`` flips it, ``rate:BYTES_PER_S`` paces writes as a serial
line at that speed would, ``hang:byte=N`` stops all answers from there on.
"""

from __future__ import annotations

import time

from fieldkit.errors import LinkLostError
from fieldkit.simulator.faults import FaultPlan
from fieldkit.transports.byte_stream import ByteStream, read_exactly_from


class FaultyByteStream:
    """A ``ByteStream`` that delivers what the laptop writes as a faulty link would."""

    def __init__(self, inner: ByteStream, plan: FaultPlan) -> None:
        self.inner = inner
        self.plan = plan
        self.bytes_written = 0  # what the laptop has sent so far, counted as the charger would receive it
        self._cut = False
        self._hung = False

    @property
    def url(self) -> str:
        return f"{self.inner.url} (with faults)"

    def _check(self) -> None:
        if self._cut:
            raise LinkLostError(f"{self.inner.url}: the link was cut at byte {self.plan.link_drop_byte}")

    def write(self, data: bytes) -> None:
        self._check()
        start = self.bytes_written
        if self.plan.link_drop_byte is not None and start <= self.plan.link_drop_byte < start + len(data):
            delivered = self.plan.link_drop_byte - start
            self._send(data[:delivered])
            self._cut = True
            self._check()
        if self.plan.hang_byte is not None and start + len(data) > self.plan.hang_byte:
            self._hung = True
        self._send(self.plan.corrupt(start, data))

    def _send(self, data: bytes) -> None:
        if not data:
            return
        if self.plan.rate_bytes_per_s:
            time.sleep(len(data) / self.plan.rate_bytes_per_s)  # the line's own speed, not a test's wait
        self.inner.write(data)
        self.bytes_written += len(data)

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        self._check()
        if self._hung:  # a hung device says nothing, however long one waits
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
