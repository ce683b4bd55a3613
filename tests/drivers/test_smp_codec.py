"""The SMP driver's pieces on their own: addresses, the MCUboot reader, the frame reader on a noisy line."""

from __future__ import annotations

import io
import os

import pytest
from smp.os_management import EchoWriteRequest

from fieldkit.drivers.mcuboot import McubootImageError, read_mcuboot_image
from fieldkit.drivers.smp import serial_url
from fieldkit.drivers.smp_link import FrameReader, decode_frame, encode_request
from fieldkit.errors import UsageError
from fieldkit.simulator.mcuboot_image import mcuboot_image
from fieldkit.transports.byte_stream import LineSettings


def test_addresses_name_the_port_or_device_server_and_the_line_settings() -> None:
    assert serial_url("smp+serial:///dev/ttyACM0?baud=921600&parity=e&stopbits=2") == (
        "/dev/ttyACM0", LineSettings(921_600, "E", 2, False))  # fmt: skip
    assert serial_url("smp+serial:///COM3") == ("COM3", LineSettings())
    assert serial_url("smp+socket://10.0.0.9:4001") == ("socket://10.0.0.9:4001", LineSettings())
    assert serial_url("smp+rfc2217://10.0.0.9:2217?rtscts=1")[1].rtscts


@pytest.mark.parametrize(
    "address",
    ["ssh://root@host", "smp+serial://", "smp+socket://host", "smp+serial:///dev/x?baud=fast",
     "smp+serial:///dev/x?parity=Q", "smp+serial:///dev/x?speed=9600"],
)  # fmt: skip
def test_a_wrong_address_is_a_usage_error_saying_the_forms(address: str) -> None:
    with pytest.raises(UsageError):
        serial_url(address)


def _image(version: str = "1.4.0+7") -> bytes:
    return mcuboot_image(b"application" + os.urandom(3000), version)


def test_an_mcuboot_image_is_read_and_its_version_matched() -> None:
    image = read_mcuboot_image(io.BytesIO(_image()), len(_image()))
    assert (image.version, image.build) == ("1.4.0", 7)
    assert image.matches_version("1.4.0") and image.matches_version("1.4.0+7")
    assert not image.matches_version("1.4.1") and not image.matches_version("1.4.0+8")


@pytest.mark.parametrize("damage", ["magic", "body", "tlv-size", "truncated", "hash"])
def test_a_damaged_image_is_refused_before_anything_is_sent(damage: str) -> None:
    data = bytearray(_image())
    if damage == "magic":
        data[0] ^= 0xFF
    elif damage == "body":
        data[600] ^= 0x01  # the hash TLV no longer holds
    elif damage == "tlv-size":
        data[-36] = 0xFF  # the TLV area claims more than the file has
    elif damage == "truncated":
        del data[-10:]
    else:
        data[-1] ^= 0x01
    with pytest.raises(McubootImageError):
        read_mcuboot_image(io.BytesIO(bytes(data)), len(data))


def test_frames_survive_console_noise_between_them_and_a_damaged_one_is_dropped() -> None:
    first = encode_request(EchoWriteRequest(d="first", sequence=1))
    second = encode_request(EchoWriteRequest(d="second" * 40, sequence=2))  # several lines
    damaged = bytearray(encode_request(EchoWriteRequest(d="third", sequence=3)))
    damaged[5] ^= 0x01
    reader = FrameReader()
    stream = b"uart:~$ boot banner\n" + first + b"\x00\xff garbage\n" + second + bytes(damaged)
    for cut in range(0, len(stream), 7):  # arriving in pieces, as a UART delivers it
        reader.feed(stream[cut : cut + 7])
    answers = [decode_frame(frame) for frame in reader.frames()]
    assert [a.body["d"] for a in answers if a is not None] == ["first", "second" * 40]
    assert reader.dropped == 1
