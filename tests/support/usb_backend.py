"""A pyusb backend that plays USB devices: the lowest layer there is to stand in for hardware here.

pyusb talks to libusb through a backend object; this one answers as the
devices given to it would: device descriptors, string descriptors (language
0x0409) and whatever control requests their ``answer`` function handles. A
device can be unplugged; requests to it then fail as libusb's do (ENODEV).
"""

from __future__ import annotations

import array
import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

GET_DESCRIPTOR = 6
STRING_DESCRIPTOR = 3
Answer = Callable[[int, int, int, int, bytes | int], bytes | int]  # (type, request, value, index, data|length)


@dataclass
class PlayedDevice:
    vendor_id: int
    product_id: int
    strings: dict[int, str] = field(default_factory=dict)  # index -> text (1 manufacturer, 2 product, 3 serial)
    answer: Answer | None = None
    plugged: bool = True
    bus: int = 1
    address: int = 5

    def descriptor(self) -> SimpleNamespace:
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0,
            bMaxPacketSize0=64, idVendor=self.vendor_id, idProduct=self.product_id, bcdDevice=0x0100,
            iManufacturer=1 if 1 in self.strings else 0, iProduct=2 if 2 in self.strings else 0,
            iSerialNumber=3 if 3 in self.strings else 0, bNumConfigurations=1, address=self.address, bus=self.bus,
            port_number=1, port_numbers=(1,), speed=2,
        )  # fmt: skip


class PlayingBackend(usb.backend.IBackend):  # type: ignore[misc]
    def __init__(self, *devices: PlayedDevice) -> None:
        self.devices = list(devices)

    def enumerate_devices(self) -> Any:
        return iter([d for d in self.devices if d.plugged])

    def get_device_descriptor(self, dev: PlayedDevice) -> SimpleNamespace:
        return dev.descriptor()

    def open_device(self, dev: PlayedDevice) -> PlayedDevice:
        self._check(dev)
        return dev

    def close_device(self, dev_handle: PlayedDevice) -> None:
        return None

    def claim_interface(self, dev_handle: PlayedDevice, intf: int) -> None:
        self._check(dev_handle)

    def release_interface(self, dev_handle: PlayedDevice, intf: int) -> None:
        return None

    @staticmethod
    def _check(dev: PlayedDevice) -> None:
        if not dev.plugged:
            raise usb.core.USBError("No such device (it may have been disconnected)", errno.ENODEV, errno.ENODEV)

    def ctrl_transfer(
        self,
        dev_handle: PlayedDevice,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> int:
        self._check(dev_handle)
        incoming = bmRequestType & 0x80
        if incoming and bRequest == GET_DESCRIPTOR and wValue >> 8 == STRING_DESCRIPTOR:
            index = wValue & 0xFF
            body = b"\x09\x04" if index == 0 else dev_handle.strings[index].encode("utf-16-le")
            reply = bytes([2 + len(body), STRING_DESCRIPTOR]) + body
        elif dev_handle.answer is None:
            raise usb.core.USBError("Pipe error", errno.EPIPE, errno.EPIPE)
        else:
            result = dev_handle.answer(bmRequestType, bRequest, wValue, wIndex, len(data) if incoming else bytes(data))
            if not incoming:
                return int(result) if isinstance(result, int) else len(data)
            reply = bytes(result) if not isinstance(result, int) else b""
        reply = reply[: len(data)]
        data[: len(reply)] = array.array("B", reply)
        return len(reply)
