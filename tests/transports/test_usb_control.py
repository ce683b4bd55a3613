"""USB control transfers through pyusb, against a backend that plays the device (no USB bus here)."""

from __future__ import annotations

import errno

import pytest

from fieldkit.errors import HostUnreachableError, LinkLostError, UsageError
from fieldkit.transports.usb_control import find_usb_devices, open_usb_control
from tests.support.usb_backend import PlayedDevice, PlayingBackend

DFU_GETSTATUS, DFU_DNLOAD = 3, 1
CLASS_INTERFACE = 0x21


def _bootloader(serial: str = "BL-0001") -> PlayedDevice:
    received: list[bytes] = []

    def answer(request_type: int, request: int, value: int, index: int, data: bytes | int) -> bytes | int:
        if request == DFU_GETSTATUS:
            return bytes([0, 0, 0, 0, 2, 0])  # OK, no poll timeout, dfuIDLE
        if request == DFU_DNLOAD and isinstance(data, bytes):
            received.append(data)
            return len(data)
        return b""

    device = PlayedDevice(0x0483, 0xDF11, {1: "Acme", 2: "DFU bootloader", 3: serial}, answer)
    device.received = received  # type: ignore[attr-defined]
    return device


def test_devices_are_found_with_their_ids_and_serial_strings() -> None:
    backend = PlayingBackend(_bootloader("BL-1"), PlayedDevice(0x1D6B, 0x0002))
    found = find_usb_devices(backend=backend)
    assert [(d.vendor_id, d.product_id, d.serial) for d in found] == [(0x0483, 0xDF11, "BL-1"), (0x1D6B, 2, None)]
    assert [d.serial for d in find_usb_devices(0x0483, backend=backend)] == ["BL-1"]


def test_control_transfers_reach_the_device_and_its_answers_come_back() -> None:
    device = _bootloader()
    control = open_usb_control(0x0483, 0xDF11, backend=PlayingBackend(device))
    try:
        assert control.identity.serial == "BL-0001"
        assert control.control_in(CLASS_INTERFACE, DFU_GETSTATUS, 0, 0, 6)[4] == 2
        assert control.control_out(CLASS_INTERFACE, DFU_DNLOAD, 0, 0, b"block-0") == 7
        assert device.received == [b"block-0"]  # type: ignore[attr-defined]
    finally:
        control.close()


def test_an_unplugged_device_is_a_lost_link_with_a_cable_hint() -> None:
    device = _bootloader()
    control = open_usb_control(0x0483, 0xDF11, backend=PlayingBackend(device))
    device.plugged = False
    with pytest.raises(LinkLostError) as lost:
        control.control_in(CLASS_INTERFACE, DFU_GETSTATUS, 0, 0, 6)
    assert "is gone" in lost.value.message and "cable" in (lost.value.hint or "")
    control.close()


def test_a_stalled_request_is_named_as_refused() -> None:
    control = open_usb_control(0x1D6B, 0x0002, backend=PlayingBackend(PlayedDevice(0x1D6B, 0x0002)))
    with pytest.raises(LinkLostError, match="stalled"):
        control.control_in(CLASS_INTERFACE, DFU_GETSTATUS, 0, 0, 6)


def test_no_such_device_and_ambiguous_devices_are_told_apart() -> None:
    with pytest.raises(HostUnreachableError, match="no USB 0483:df11 serial X is attached"):
        open_usb_control(0x0483, 0xDF11, serial="X", backend=PlayingBackend(_bootloader()))
    two = PlayingBackend(_bootloader("A"), _bootloader("B"))
    with pytest.raises(UsageError, match="2 devices") as ambiguous:
        open_usb_control(0x0483, 0xDF11, backend=two)
    assert "serial" in (ambiguous.value.hint or "")
    assert open_usb_control(0x0483, 0xDF11, serial="B", backend=two).identity.serial == "B"


def test_permission_denied_names_the_udev_rule() -> None:
    class Denied(PlayingBackend):
        def open_device(self, dev: PlayedDevice) -> PlayedDevice:
            import usb.core

            raise usb.core.USBError("Access denied (insufficient permissions)", errno.EACCES, errno.EACCES)

    control = open_usb_control(0x0483, 0xDF11, backend=Denied(_bootloader()))
    with pytest.raises(HostUnreachableError) as denied:
        control.control_in(CLASS_INTERFACE, DFU_GETSTATUS, 0, 0, 6)
    assert "udev" in (denied.value.hint or "")
