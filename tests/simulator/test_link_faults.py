"""Link faults worn by a byte link (the loopback here): cut, corrupted, paced, hung."""

from __future__ import annotations

import threading
import time

import pytest

from fieldkit.errors import LinkLostError
from fieldkit.simulator.faults import FaultPlan
from fieldkit.simulator.link_faults import FaultyByteStream, LinkFaults
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


def test_the_shared_core_counts_a_cut_inside_a_span_and_a_reconnect_clears_it() -> None:
    faults = LinkFaults(FaultPlan.parse(["link-drop:byte=100"]))
    assert faults.admit(60) == 60
    assert faults.admit(60) == 40, "only the bytes before the cut arrive"
    assert faults.cut and faults.admit(10) == 0, "nothing arrives on a cut link"
    faults.reconnect()
    assert not faults.cut and faults.admit(1000) == 1000, "the cable, put back, carries everything"
    assert faults.received == 1100


def test_a_stall_holds_the_sender_until_released() -> None:
    faults = LinkFaults(FaultPlan())
    faults.stall_at(10)
    faults.admit(20)
    sender = threading.Thread(target=faults.wait_while_stalled)
    sender.start()
    assert faults.stalled.wait(timeout=10), "the sender should be held at the hang byte"
    assert sender.is_alive()
    faults.release()
    sender.join(timeout=10)
    assert not sender.is_alive()
