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
import errno
import os
import time
from dataclasses import dataclass
from typing import Final, Literal, Protocol

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


def _open_error(url: str, exc: Exception) -> HostUnreachableError:
    """Why a port would not open, in words that say what to do: missing, busy, or not allowed."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT or "No such file" in text or ("could not open port" in text and "FileNotFound" in text):
        return HostUnreachableError(
            f"there is no serial port {url}",
            "check the cable and the port's name (`ls /dev/serial/by-id/`, or Device Manager on Windows)",
        )
    if code == errno.EACCES or "Permission denied" in text or "Access is denied" in text:
        return HostUnreachableError(
            f"{url}: permission denied",
            "add your user to the dialout group (`sudo usermod -aG dialout $USER`, then log in again), "
            "or install fieldkit's udev rules",
        )
    if code == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower():
        return HostUnreachableError(
            f"{url} is in use by another program",
            "close the terminal, flasher or modem manager holding it (`fuser " + url + "` shows which)",
        )
    return HostUnreachableError(f"cannot open {url}: {text}", _hint_for(url))


def _hint_for(url: str) -> str:
    if url.startswith(NETWORK_SCHEMES):
        return "check the serial device server's address and port, and that nothing else holds the port"
    if url.startswith("loop://"):
        return "loop:// is a loopback for tests"
    return (
        "check the cable and the port name (`ls /dev/serial/by-id/`, or Device Manager on Windows); "
        "on Linux the user needs the dialout group"
    )


@dataclass(frozen=True)
class LineSettings:
    """How the line is framed: 8 data bits always; parity, stop bits and flow control as the board wants."""

    baud: int = DEFAULT_BAUD
    parity: Literal["N", "E", "O"] = "N"
    stop_bits: Literal[1, 2] = 1
    rtscts: bool = False  # hardware flow control
    xonxoff: bool = False  # software flow control: never with a binary protocol (SMP bytes include XON/XOFF)


class SerialByteStream:
    """``ByteStream`` over pyserial."""

    def __init__(self, url: str, line: LineSettings | int = DEFAULT_BAUD) -> None:
        import serial  # imported here: `import fieldkit` loads no pyserial

        settings = line if isinstance(line, LineSettings) else LineSettings(baud=line)
        if settings.baud <= 0:
            raise UsageError(
                f"baud rate {settings.baud} is not a baud rate", "use the charger's console speed, e.g. 115200"
            )
        self._url = url
        local = not url.startswith((*NETWORK_SCHEMES, "loop://"))
        try:
            self._port = serial.serial_for_url(
                url,
                baudrate=settings.baud,
                parity=settings.parity,
                stopbits=settings.stop_bits,
                rtscts=settings.rtscts,
                xonxoff=settings.xonxoff,
                write_timeout=DEFAULT_READ_TIMEOUT_S,
                # A local port is ours alone while we use it: another program (a terminal left open, a modem
                # manager) reading from it would eat the board's answers.
                **({"exclusive": True} if local and os.name == "posix" else {}),
            )
        except ValueError as exc:  # a URL or a setting pyserial does not understand
            raise UsageError(
                f"{url!r} is not a serial port or serial URL, or its settings are wrong: {exc}",
                "use a port (/dev/ttyUSB0, COM3) or rfc2217://HOST:PORT or socket://HOST:PORT",
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise _open_error(url, exc) from exc
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


# What kind of adapter a USB vendor:product id is, for the technician looking at a list of ports.
ADAPTER_HINTS: Final = {
    (0x0403, None): "FTDI USB-serial adapter",
    (0x10C4, None): "Silicon Labs CP210x USB-serial adapter",
    (0x1A86, None): "WCH CH340 USB-serial adapter",
    (0x067B, None): "Prolific PL2303 USB-serial adapter",
    (0x0483, 0x5740): "STM32 virtual COM port (CDC-ACM)",
    (0x1915, None): "Nordic Semiconductor board (CDC-ACM)",
    (0x2FE3, None): "Zephyr USB device (CDC-ACM)",
    (0x1366, None): "SEGGER J-Link virtual COM port",
}


@dataclass(frozen=True)
class PortInfo:
    """A local serial port as the operating system describes it."""

    device: str
    description: str
    manufacturer: str | None
    vid: int | None
    pid: int | None
    serial_number: str | None

    @property
    def hint(self) -> str:
        if self.vid is not None:
            found = ADAPTER_HINTS.get((self.vid, self.pid)) or ADAPTER_HINTS.get((self.vid, None))
            if found:
                return found
        if "ttyACM" in self.device:
            return "USB CDC-ACM device"
        return self.description if self.description not in ("", "n/a") else "serial port"


def list_local_ports() -> list[PortInfo]:
    """The laptop's serial ports (USB adapters, CDC-ACM boards, built-in UARTs)."""
    from serial.tools import list_ports  # imported here: `import fieldkit` loads no pyserial

    return [
        PortInfo(p.device, p.description or "", p.manufacturer, p.vid, p.pid, p.serial_number)
        for p in sorted(list_ports.comports(), key=lambda port: port.device)
    ]


def open_byte_stream(url: str, line: LineSettings | int = DEFAULT_BAUD) -> ByteStream:
    return SerialByteStream(url, line)
