"""Link faults worn by a byte link (the loopback here): cut, corrupted, paced, hung."""

from __future__ import annotations

import time

import pytest

from fieldkit.errors import LinkLostError
from fieldkit.simulator.faults import FaultPlan
from fieldkit.simulator.link_faults import FaultyByteStream
from fieldkit.transports.byte_stream import open_byte_stream


def _link(*specs: str) -> FaultyByteStream:
    return FaultyByteStream(open_byte_stream("loop://"), FaultPlan.parse(list(specs)))


def test_a_cut_delivers_the_bytes_before_it_and_nothing_after() -> None:
    link = _link("link-drop:byte=10")
    link.write(b"012345")
    with pytest.raises(LinkLostError, match="cut at byte 10"):
        link.write(b"6789ABCD")
    assert link.inner.read_exactly(10, timeout_s=2) == b"0123456789"
    with pytest.raises(LinkLostError):
        link.write(b"more")
    link.close()


def test_a_corrupted_byte_arrives_flipped() -> None:
    link = _link("corrupt:byte=2")
    link.write(b"\x00\x00\x00\x00")
    assert link.read_exactly(4, timeout_s=2) == b"\x00\x00\xff\x00"
    link.close()


def test_a_hung_device_answers_nothing() -> None:
    link = _link("hang:byte=4")
    link.write(b"ping-ping")
    with pytest.raises(LinkLostError, match="0 of 4 bytes"):
        link.read_exactly(4, timeout_s=0.2)
    link.close()


def test_a_paced_line_takes_at_least_its_bytes_over_its_rate() -> None:
    link = _link("rate:10000")
    start = time.monotonic()
    link.write(b"x" * 1000)
    assert time.monotonic() - start >= 0.1  # 1000 bytes at 10,000 B/s; a loaded machine only adds to it
    assert link.read_exactly(1000, timeout_s=2) == b"x" * 1000
    link.close()
