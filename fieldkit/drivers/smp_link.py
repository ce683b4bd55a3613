"""mcumgr SMP over a byte stream: the serial framing, and answers matched to requests by sequence number.

Framing and messages are the ``smp`` package's: ``smp.packet`` encodes a
frame into base64 lines of at most ``line_length`` bytes (a start marker,
continuation markers, a length and a CRC16) and decodes them; ``smp.header``
and the group modules build and read the messages. This module adds what a
real serial line needs: lines that are not SMP (a board's console output,
noise on the wire) are skipped, a frame that fails its CRC is dropped as if
never sent, and every answer is matched to its request by its sequence
number, so an answer that arrives after its request was given up on is
recognised as stale and dropped instead of being taken for the answer to a
later request.
"""

from __future__ import annotations

import binascii
import itertools
import secrets
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Final, TypeVar

import cbor2
from pydantic import ValidationError
from smp import header as smp_header
from smp import message as smp_message
from smp import packet as smp_packet
from smp.exceptions import SMPBadContinueDelimiter, SMPBadCRC, SMPBadStartDelimiter

from fieldkit.errors import DeviceRefusedError, LinkLostError
from fieldkit.transports.byte_stream import ByteStream

LINE_LENGTH: Final = 127  # Zephyr's serial transport default (CONFIG_UART_MCUMGR_RX_BUF_SIZE is 128)
MAX_LINE_BYTES: Final = 4096  # a longer run without a newline is noise, not an SMP line
MAX_FRAME_BYTES: Final = 64 * 1024
READ_BYTES: Final = 4096

ResponseT = TypeVar("ResponseT", bound=smp_message.Response)


class SmpError(DeviceRefusedError):
    """The board answered a request with an SMP error code."""

    def __init__(self, what: str, group: int, rc: int, reason: str | None = None) -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"the board refused {what}: SMP error {rc} in group {group}{detail}",
            "see the board's mcumgr error codes; 6 (bad state) usually means an image is already pending",
        )
        self.group = group
        self.rc = rc


@dataclass(frozen=True)
class Answer:
    header: smp_header.Header
    body: dict[str, object]
    frame: bytes


def encode_request(request: smp_message.Request, line_length: int = LINE_LENGTH) -> bytes:
    """A request as it goes on the line: base64 lines of at most ``line_length`` bytes (smp.packet)."""
    return b"".join(smp_packet.encode(bytes(request), line_length=line_length))


def decode_frame(frame: bytes) -> Answer | None:
    """An SMP frame's header and CBOR body, or None when it is not a well-formed frame."""
    if len(frame) < smp_header.Header.SIZE:
        return None
    try:
        head = smp_header.Header.loads(frame[: smp_header.Header.SIZE])
        body = cbor2.loads(frame[smp_header.Header.SIZE : smp_header.Header.SIZE + head.length])
    except (ValueError, cbor2.CBORDecodeError, ValidationError):
        return None
    if not isinstance(body, dict) or not all(isinstance(key, str) for key in body):
        return None
    return Answer(head, body, frame)


class FrameReader:
    """Bytes from the line in, whole SMP frames out; whatever is not SMP is skipped."""

    def __init__(self) -> None:
        self._line = bytearray()
        self._decoder: Generator[None, bytes, bytes] | None = None
        self._frames: list[bytes] = []
        self.dropped = 0  # frames lost to a bad CRC, a broken line or noise inside them

    def feed(self, data: bytes) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._line += data[start:]
                if len(self._line) > MAX_LINE_BYTES:
                    self._line.clear()
                    self._abandon()
                return
            self._line += data[start : end + 1]
            self._take_line(bytes(self._line))
            self._line.clear()
            start = end + 1

    def frames(self) -> list[bytes]:
        done, self._frames = self._frames, []
        return done

    def _abandon(self) -> None:
        if self._decoder is not None:
            self.dropped += 1
            self._decoder = None

    def _take_line(self, line: bytes) -> None:
        marker = line[: smp_packet.DELIMITER_SIZE]
        if marker == smp_packet.START_DELIMITER:
            self._abandon()  # a new frame starts: the one in progress will not be finished
            self._decoder = smp_packet.decode()
            next(self._decoder)
        elif marker != smp_packet.CONTINUE_DELIMITER or self._decoder is None:
            return  # console output or noise between frames
        assert self._decoder is not None
        try:
            self._decoder.send(line)
        except StopIteration as done:
            self._decoder = None
            if len(done.value) <= MAX_FRAME_BYTES:
                self._frames.append(bytes(done.value))
        except (SMPBadCRC, SMPBadStartDelimiter, SMPBadContinueDelimiter, binascii.Error, ValueError, IndexError):
            self._abandon()


class SmpLink:
    """Requests and answers over one byte stream. Not thread-safe: one job talks to one board."""

    def __init__(self, stream: ByteStream, line_length: int = LINE_LENGTH) -> None:
        self.stream = stream
        self.line_length = line_length
        self._reader = FrameReader()
        self._waiting: list[Answer] = []
        self._sequence = itertools.count(secrets.randbelow(256))
        self.stale_answers = 0  # answers to requests given up on, dropped

    def next_sequence(self) -> int:
        return next(self._sequence) % 256

    def encoded(self, request: smp_message.Request) -> bytes:
        return encode_request(request, self.line_length)

    def send(self, request: smp_message.Request) -> None:
        self.stream.write(self.encoded(request))

    def receive(self, timeout_s: float) -> Answer | None:
        """The next answer that arrives within ``timeout_s``, or None."""
        deadline = time.monotonic() + timeout_s
        while not self._waiting:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return None
            self._reader.feed(self.stream.read(READ_BYTES, remaining_s))
            for frame in self._reader.frames():
                answer = decode_frame(frame)
                if answer is not None:
                    self._waiting.append(answer)
        return self._waiting.pop(0)

    def request(
        self,
        build: type[smp_message.Request],
        answer_type: type[ResponseT],
        what: str,
        timeout_s: float,
        attempts: int = 3,
        **fields: object,
    ) -> ResponseT:
        """Send ``build(**fields)`` and return its answer; each new attempt has a new sequence number."""
        for _attempt in range(attempts):
            request = build(sequence=self.next_sequence(), **fields)
            self.send(request)
            deadline = time.monotonic() + timeout_s
            while (remaining_s := deadline - time.monotonic()) > 0:
                answer = self.receive(remaining_s)
                if answer is None:
                    break
                if answer.header.sequence != request.header.sequence:
                    self.stale_answers += 1
                    continue
                return parse_answer(answer, answer_type, what)
        raise LinkLostError(
            f"{self.stream.url}: the board did not answer {what} ({attempts} attempts of {timeout_s:g} s)",
            "check the cable, the port and the baud rate; the board may be resetting or not running mcumgr",
        )


def raise_if_error(answer: Answer, what: str) -> None:
    """An SMP error answer (version 1 ``rc``, version 2 ``err``) as the refusal it is."""
    body = answer.body
    rc = body.get("rc")
    if isinstance(rc, int) and rc != 0:
        reason = body.get("rsn")
        raise SmpError(what, int(answer.header.group_id), rc, reason if isinstance(reason, str) else None)
    err = body.get("err")
    if isinstance(err, dict):
        group, code = err.get("group"), err.get("rc")
        if isinstance(code, int) and code != 0:
            raise SmpError(what, group if isinstance(group, int) else int(answer.header.group_id), code)


def parse_answer(answer: Answer, answer_type: type[ResponseT], what: str) -> ResponseT:
    raise_if_error(answer, what)
    # Fields this client does not know are left out (a newer board may say more); the frame as received is
    # kept, so the message is not re-encoded and compared with what the board sent.
    fields = {key: value for key, value in answer.body.items() if key in answer_type.model_fields}
    for own in ("header", "version", "sequence", "smp_data"):
        fields.pop(own, None)
    try:
        return answer_type(header=answer.header, smp_data=answer.frame, **fields)
    except (ValidationError, ValueError) as exc:
        raise DeviceRefusedError(
            f"the board answered {what} in a shape fieldkit cannot read: {str(exc).splitlines()[0]}",
            "the board's mcumgr may be too old or too new for fieldkit",
        ) from exc
