"""Byte streams through pyserial URLs: the loopback, a TCP serial device server on loopback, and the errors
a technician meets (no such port, nobody listening, the server going away), each one line with a hint."""

from __future__ import annotations

import os
import socket
import threading
import tty
from collections.abc import Iterator

import pytest

from fieldkit.errors import HostUnreachableError, LinkLostError, UsageError
from fieldkit.transports.byte_stream import LineSettings, open_byte_stream


def test_loopback_returns_what_was_written_and_what_arrived_only() -> None:
    stream = open_byte_stream("loop://")
    try:
        stream.write(b"hello")
        assert stream.read_exactly(5, timeout_s=2) == b"hello"
        assert stream.read(10, timeout_s=0.01) == b"", "nothing more arrived"
        stream.write(b"noise")
        stream.discard_input()
        stream.write(b"frame")
        assert stream.read_exactly(5, timeout_s=2) == b"frame"
    finally:
        stream.close()


def test_a_frame_that_never_completes_is_a_lost_link_saying_how_much_came() -> None:
    stream = open_byte_stream("loop://")
    stream.write(b"abc")
    with pytest.raises(LinkLostError, match="3 of 8 bytes arrived"):
        stream.read_exactly(8, timeout_s=0.2)
    stream.close()


@pytest.fixture
def device_server() -> Iterator[tuple[int, threading.Event]]:
    """A serial device server on loopback: echoes one message, then hangs up when told to."""
    listener = socket.create_server(("127.0.0.1", 0))
    hang_up = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(connection.recv(64))
            hang_up.wait(timeout=30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], hang_up
    hang_up.set()
    thread.join(timeout=10)
    listener.close()


def test_a_serial_device_server_over_socket_url(device_server: tuple[int, threading.Event]) -> None:
    port, hang_up = device_server
    stream = open_byte_stream(f"socket://127.0.0.1:{port}")
    try:
        stream.write(b"mcumgr")
        assert stream.read_exactly(6, timeout_s=5) == b"mcumgr"
        hang_up.set()

        def read_until_lost() -> None:
            for _ in range(100):  # bounded: the hang-up is seen within a few reads
                stream.read(16, timeout_s=0.1)

        with pytest.raises(LinkLostError) as lost:
            read_until_lost()
        assert "device server" in (lost.value.hint or "")
    finally:
        stream.close()


def test_nobody_listening_is_unreachable_with_a_hint_for_device_servers() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(HostUnreachableError) as refused:
        open_byte_stream(f"socket://127.0.0.1:{port}")
    assert "serial device server" in (refused.value.hint or "")


def test_a_missing_port_names_the_port_and_where_to_look() -> None:
    with pytest.raises(HostUnreachableError) as missing:
        open_byte_stream("/dev/ttyFIELDKIT-none")
    assert missing.value.message == "there is no serial port /dev/ttyFIELDKIT-none"
    assert "/dev/serial/by-id" in (missing.value.hint or "")


def test_a_local_port_is_opened_exclusively_and_a_second_user_is_told_it_is_busy() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    first = open_byte_stream(path, LineSettings(baud=115_200, parity="E", stop_bits=2))
    try:
        with pytest.raises(HostUnreachableError) as busy:
            open_byte_stream(path)
        assert busy.value.message == f"{path} is in use by another program"
        assert "fuser" in (busy.value.hint or "")
        first.write(b"still ours")
        assert os.read(master, 64) == b"still ours"
    finally:
        first.close()
        os.close(slave)
        os.close(master)


def test_a_url_pyserial_does_not_understand_is_a_usage_error_listing_the_forms() -> None:
    with pytest.raises(UsageError) as wrong:
        open_byte_stream("bogus://x")
    assert "rfc2217://HOST:PORT" in (wrong.value.hint or "")


def test_a_device_server_address_without_a_port_cannot_be_opened() -> None:
    with pytest.raises(HostUnreachableError, match="socket://no-port-here"):
        open_byte_stream("socket://no-port-here")


def test_a_nonsense_baud_rate_is_refused() -> None:
    with pytest.raises(UsageError, match="not a baud rate"):
        open_byte_stream("loop://", 0)
