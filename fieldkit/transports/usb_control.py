"""USB control transfers, through pyusb: the link a DFU bootloader (and other vendor devices) offers.

One of the three shapes of link (the others: ``byte_stream.py`` and the SSH
remote shell). A driver gets a ``UsbControl``: the device's identity (vendor
and product id, serial string: often all a bootloader tells) and control
transfers in and out. pyusb's objects and errors stay here; its errors
become fieldkit errors whose hints name what to check on a USB link (the
cable, the udev rule for a non-root user, libusb).

``backend`` is pyusb's own backend parameter: libusb 1.0 on a laptop; in the
tests a backend that plays a device, the lowest layer there is to stand in.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
from dataclasses import dataclass
from typing import Any, Final, Protocol

from fieldkit.errors import HostUnreachableError, LinkLostError, UsageError

DEFAULT_TIMEOUT_S: Final = 5.0
PERMISSION_HINT: Final = "a non-root user needs fieldkit's udev rule (packaging/udev/); or run as an administrator"
GONE_HINT: Final = "check the USB cable; a device that re-enumerates (a bootloader resetting) gets a new address"


@dataclass(frozen=True)
class UsbId:
    """What identifies a USB device before anything is asked of it."""

    vendor_id: int
    product_id: int
    serial: str | None  # the serial number string; None when the device has none
    bus: int | None
    address: int | None

    @property
    def label(self) -> str:
        where = f" on bus {self.bus} address {self.address}" if self.bus is not None else ""
        return (
            f"USB {self.vendor_id:04x}:{self.product_id:04x}"
            + (f" serial {self.serial}" if self.serial else "")
            + where
        )


class UsbControl(Protocol):
    @property
    def identity(self) -> UsbId: ...

    def control_in(self, request_type: int, request: int, value: int, index: int, length: int) -> bytes: ...

    def control_out(self, request_type: int, request: int, value: int, index: int, data: bytes) -> int: ...

    def close(self) -> None: ...


def _converted(exc: Exception, label: str) -> Exception:
    """A pyusb error as the fieldkit error a technician can act on."""
    import usb.core

    if isinstance(exc, usb.core.NoBackendError):
        return HostUnreachableError("no USB library found (libusb 1.0)", "install libusb-1.0 (Debian: libusb-1.0-0)")
    if isinstance(exc, usb.core.USBTimeoutError):
        return LinkLostError(f"{label} did not answer in time", GONE_HINT)
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return HostUnreachableError(f"no permission to use {label}", PERMISSION_HINT)
    if code in (errno.ENODEV, errno.ENOENT, errno.EIO):
        return LinkLostError(f"{label} is gone ({exc})", GONE_HINT)
    if code == errno.EPIPE:  # a stall: the device refused the request
        return LinkLostError(f"{label} stalled the request ({exc})", "the device refused it: check its state")
    return LinkLostError(f"{label}: {exc}", GONE_HINT)


def _backend_or_default(backend: object) -> object:
    """The backend asked for, else libusb from the `libusb-package` wheel where one is installed, else None.

    None lets pyusb find the system's libusb (Linux, macOS with Homebrew). Windows has no system libusb: its
    build ships `libusb-package`, whose DLL pyusb would not find by itself (packaging/README.md).
    """
    if backend is not None:
        return backend
    try:
        libusb_package = importlib.import_module("libusb_package")
    except ImportError:
        return None
    return libusb_package.get_libusb1_backend()


def _serial_of(device: Any) -> str | None:
    import usb.util

    if not device.iSerialNumber:
        return None
    try:
        return str(usb.util.get_string(device, device.iSerialNumber))
    except (ValueError, NotImplementedError, OSError):  # no string descriptors, or no language: no serial
        return None


def _id_of(device: Any) -> UsbId:
    return UsbId(int(device.idVendor), int(device.idProduct), _serial_of(device), device.bus, device.address)


def find_usb_devices(
    vendor_id: int | None = None, product_id: int | None = None, backend: object = None
) -> list[UsbId]:
    """The devices attached, optionally only one vendor's (and product's)."""
    import usb.core

    criteria: dict[str, Any] = {}
    if vendor_id is not None:
        criteria["idVendor"] = vendor_id
    if product_id is not None:
        criteria["idProduct"] = product_id
    try:
        devices = list(usb.core.find(find_all=True, backend=_backend_or_default(backend), **criteria))
        return [_id_of(device) for device in devices]
    except (usb.core.USBError, usb.core.NoBackendError) as exc:
        raise _converted(exc, "the USB bus") from exc


class PyusbControl:
    """``UsbControl`` over a pyusb device."""

    def __init__(self, device: Any, identity: UsbId, timeout_s: float) -> None:
        self._device = device
        self._identity = identity
        self._timeout_ms = int(timeout_s * 1000)

    @property
    def identity(self) -> UsbId:
        return self._identity

    def control_in(self, request_type: int, request: int, value: int, index: int, length: int) -> bytes:
        import usb.core

        try:
            answer = self._device.ctrl_transfer(request_type | 0x80, request, value, index, length, self._timeout_ms)
        except usb.core.USBError as exc:
            raise _converted(exc, self._identity.label) from exc
        return bytes(answer)

    def control_out(self, request_type: int, request: int, value: int, index: int, data: bytes) -> int:
        import usb.core

        try:
            return int(self._device.ctrl_transfer(request_type & 0x7F, request, value, index, data, self._timeout_ms))
        except usb.core.USBError as exc:
            raise _converted(exc, self._identity.label) from exc

    def close(self) -> None:
        import usb.core
        import usb.util

        with contextlib.suppress(usb.core.USBError):  # a device already gone has nothing left to release
            usb.util.dispose_resources(self._device)


def open_usb_control(
    vendor_id: int,
    product_id: int,
    serial: str | None = None,
    backend: object = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> UsbControl:
    """The one device with these ids (and serial); UsageError when several match and no serial tells them apart."""
    import usb.core

    try:
        devices = list(
            usb.core.find(find_all=True, idVendor=vendor_id, idProduct=product_id, backend=_backend_or_default(backend))
        )
        matches = [(device, _id_of(device)) for device in devices]
    except (usb.core.USBError, usb.core.NoBackendError) as exc:
        raise _converted(exc, f"USB {vendor_id:04x}:{product_id:04x}") from exc
    if serial is not None:
        matches = [(device, found) for device, found in matches if found.serial == serial]
    wanted = f"USB {vendor_id:04x}:{product_id:04x}" + (f" serial {serial}" if serial else "")
    if not matches:
        raise HostUnreachableError(f"no {wanted} is attached", GONE_HINT)
    if len(matches) > 1:
        serials = ", ".join(found.serial or "(none)" for _, found in matches)
        raise UsageError(
            f"{len(matches)} devices are {wanted} (serials: {serials})", "name the one to use by its serial"
        )
    device, found = matches[0]
    return PyusbControl(device, found, timeout_s)
