"""Byte streams: a serial port, a USB CDC-ACM gadget, a serial device server, all through pyserial URLs.

One of the three shapes of link (the others: ``usb_control.py`` and the SSH
remote shell in ``ssh.py``). A driver for an MCU over mcumgr SMP or a U-Boot
console gets a ``ByteStream`` and never sees pyserial: what it can name is a
URL, ``serial_for_url`` understands them all (``/dev/ttyUSB0``, ``COM3``,
``rfc2217://host:port``, ``socket://host:port``, and ``loop://``, a loopback
for tests), and every pyserial error becomes a fieldkit error whose hint
names what to check on that kind of link.
"""

from __future__ import annotations

import contextlib
import time
from typing import Final, Protocol

from fieldkit.errors import HostUnreachableError, LinkLostError, UsageError

DEFAULT_BAUD: Final = 115_200
# Serial chargers answer a frame in milliseconds; a read that gets nothing for this long is a dead link.
DEFAULT_READ_TIMEOUT_S: Final = 2.0
NETWORK_SCHEMES: Final = ("rfc2217://", "socket://")


class ByteStream(Protocol):
    """A two-way byte link. ``read`` returns what arrived within the timeout (b"" for nothing)."""

    @property
    def url(self) -> str: ...

    def write(self, data: bytes) -> None: ...

    def read(self, max_bytes: int, timeout_s: float) -> bytes: ...

    def read_exactly(self, count: int, timeout_s: float) -> bytes:
        """``count`` bytes, or LinkLostError when they do not all arrive within ``timeout_s``."""
        ...

    def discard_input(self) -> None:
        """Forget what arrived and was not read (a console's boot noise, a half frame)."""
        ...

    def close(self) -> None: ...


def _hint_for(url: str) -> str:
    if url.startswith(NETWORK_SCHEMES):
        return "check the serial device server's address and port, and that nothing else holds the port"
    if url.startswith("loop://"):
        return "loop:// is a loopback for tests"
    return (
        "check the cable and the port name (`ls /dev/serial/by-id/`, or Device Manager on Windows); "
        "on Linux the user needs the dialout group"
    )


class SerialByteStream:
    """``ByteStream`` over pyserial."""

    def __init__(self, url: str, baud: int = DEFAULT_BAUD) -> None:
        import serial  # imported here: `import fieldkit` loads no pyserial

        if baud <= 0:
            raise UsageError(f"baud rate {baud} is not a baud rate", "use the charger's console speed, e.g. 115200")
        self._url = url
        try:
            self._port = serial.serial_for_url(url, baudrate=baud, write_timeout=DEFAULT_READ_TIMEOUT_S)
        except ValueError as exc:  # a URL pyserial does not understand
            raise UsageError(
                f"{url!r} is not a serial port or serial URL: {exc}",
                "use a port (/dev/ttyUSB0, COM3) or rfc2217://HOST:PORT or socket://HOST:PORT",
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise HostUnreachableError(f"cannot open {url}: {exc}", _hint_for(url)) from exc
        self._serial_error: type[Exception] = serial.SerialException

    @property
    def url(self) -> str:
        return self._url

    def _lost(self, exc: Exception) -> LinkLostError:
        return LinkLostError(f"the link on {self._url} failed: {exc}", _hint_for(self._url))

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (self._serial_error, OSError) as exc:
            raise self._lost(exc) from exc

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        try:
            self._port.timeout = max(0.0, timeout_s)
            first: bytes = self._port.read(1)  # waits up to the timeout for the first byte only
            if not first or max_bytes <= 1:
                return first
            waiting = min(int(self._port.in_waiting), max_bytes - 1)
            return first + (self._port.read(waiting) if waiting else b"")  # what is already here: no wait
        except (self._serial_error, OSError) as exc:
            raise self._lost(exc) from exc

    def read_exactly(self, count: int, timeout_s: float) -> bytes:
        return read_exactly_from(self, count, timeout_s)

    def discard_input(self) -> None:
        try:
            self._port.reset_input_buffer()
        except (self._serial_error, OSError) as exc:
            raise self._lost(exc) from exc

    def close(self) -> None:
        # Closing a port that is gone (adapter unplugged) has nothing left to do.
        with contextlib.suppress(self._serial_error, OSError):
            self._port.close()


def read_exactly_from(stream: ByteStream, count: int, timeout_s: float) -> bytes:
    """``count`` bytes from ``stream`` within ``timeout_s``, or LinkLostError saying how many came."""
    deadline = time.monotonic() + timeout_s
    received = bytearray()
    while len(received) < count:
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            raise LinkLostError(
                f"{stream.url}: {len(received)} of {count} bytes arrived in {timeout_s:g} s", _hint_for(stream.url)
            )
        received += stream.read(count - len(received), remaining_s)
    return bytes(received)


def open_byte_stream(url: str, baud: int = DEFAULT_BAUD) -> ByteStream:
    return SerialByteStream(url, baud)
