"""An image upload over mcumgr SMP with a window of requests in flight, resumed where the board stands.

Why a window: a board answers each chunk only after writing it to flash,
and over a UART the next request takes as long to arrive as the last one
took to be written. Sending one chunk and waiting for its answer (what
smpclient does) leaves the line idle for every answer's round trip; with
``buf_count - 1`` requests in flight (the board has ``buf_count`` buffers;
one stays free for the answer it is building) the line never waits. Each
request carries as much data as one of the board's buffers holds
(``buf_size``, the MCUmgr parameters it reports), not a fixed 256 bytes.

What the board does with a chunk whose offset is not the one it expects
(Zephyr's img_mgmt): it drops the data and answers with the offset it
expects. So a lost or corrupted frame costs one answer: the upload goes
back to the offset the board names. Answers are matched to requests by
sequence number; one that belongs to a request already given up on is
dropped. A request unanswered in time is sent again from the last offset
the board confirmed, a bounded number of times in a row.

Resume: the upload state of an SMP server lives in its RAM. After a link
drop or a killed laptop process, the board still knows its offset, and a
request at an offset it does not expect makes it say which one it does
(nothing is written). After a power cut it knows nothing and the image is
sent again from the start, unless the whole image is already in the slot
(the ``sha`` of a new upload matches and the board says so at once).
The board's own check of the whole image against that ``sha`` (``match``
in its last answer) decides whether the upload is good.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from smp.image_management import ImageUploadWriteRequest, ImageUploadWriteResponse

from fieldkit.drivers.smp_link import SmpError, SmpLink, parse_answer
from fieldkit.errors import DeviceRefusedError, LinkLostError
from fieldkit.fsutil import sha256_file

FRAMING_MARGIN_BYTES: Final = 4  # the serial frame's length and CRC share the board's receive buffer
MAX_RETRIES_IN_A_ROW: Final = 6
# An offset no upload session starts at: a continuation request there only asks the board where it stands.
PROBE_OFFSET: Final = 1


@dataclass
class UploadReport:
    resumed_at: int = 0  # where the board stood when this upload began (0: from the start)
    frames_sent: int = 0
    bytes_sent: int = 0  # image bytes sent, counting each retransmission again
    retransmissions: int = 0  # times the window went back to the board's offset
    match: bool | None = None  # the board's own check of the whole image (None: it does not report one)
    window: int = 1
    chunk_bytes: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _InFlight:
    sequence: int
    start: int
    end: int
    sent_at: float
    encoded_bytes: int


def chunk_bytes_for(buf_size: int, total: int) -> int:
    """The most image bytes one upload request can carry so the whole frame fits the board's buffer."""
    limit = buf_size - FRAMING_MARGIN_BYTES
    low, high = 1, max(1, limit)
    while low < high:  # the largest data length whose worst-case frame (last offset, first-request fields) fits
        middle = (low + high + 1) // 2
        probe = ImageUploadWriteRequest(off=total, data=bytes(middle), len=total, sha=bytes(32), image=0, sequence=0)
        if len(bytes(probe)) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


class WindowedUpload:
    def __init__(
        self,
        link: SmpLink,
        path: Path,
        source_offset: int,
        size: int,
        buf_size: int,
        buf_count: int,
        answer_timeout_s: float,
        link_rate_bytes_per_s: int | None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.link = link
        self.path = path
        self.source_offset = source_offset
        self.size = size
        self.window = max(1, buf_count - 1)
        self.chunk = chunk_bytes_for(buf_size, size)
        self.answer_timeout_s = answer_timeout_s
        self.link_rate = link_rate_bytes_per_s
        self.on_progress = on_progress
        self.report = UploadReport(window=self.window, chunk_bytes=self.chunk)
        self._sha = self._file_sha256()

    def _file_sha256(self) -> bytes:
        hashed, digest = sha256_file(self.path, self.source_offset, self.size)
        if hashed != self.size:
            raise DeviceRefusedError(f"{self.path} ended before the image did")
        return bytes.fromhex(digest)

    def run(self) -> UploadReport:
        with self.path.open("rb") as source:
            offset = self._where_the_board_stands()
            self.report.resumed_at = offset
            if offset == 0:
                offset = self._start(source)
            if offset < self.size:
                self._send_window(source, offset)
        return self.report

    # -- the first exchanges ------------------------------------------------------

    def _where_the_board_stands(self) -> int:
        try:
            answer = self.link.request(
                ImageUploadWriteRequest, ImageUploadWriteResponse, "an upload position query",
                self._timeout(0), off=PROBE_OFFSET, data=b"",
            )  # fmt: skip
        except SmpError:  # a board that refuses a continuation with no upload running has nothing to resume
            return 0
        offset = answer.off if answer.off is not None else 0
        # An offset past our image belongs to another upload: start afresh.
        return offset if 0 < offset <= self.size else 0

    def _start(self, source: BinaryIO) -> int:
        data = self._read(source, 0, min(self.chunk, self.size))
        answer = self.link.request(
            ImageUploadWriteRequest, ImageUploadWriteResponse, "the start of the upload",
            self._timeout(len(data) * 2), off=0, data=data, len=self.size, sha=self._sha, image=0,
        )  # fmt: skip
        self.report.frames_sent += 1
        self.report.bytes_sent += len(data)
        offset = answer.off if answer.off is not None else len(data)
        self._finished(answer)
        self._progress(offset)
        return offset

    # -- the window ---------------------------------------------------------------------

    def _send_window(self, source: BinaryIO, offset: int) -> None:
        confirmed = offset  # the board said it has everything before this
        next_offset = offset
        in_flight: list[_InFlight] = []
        retries_in_a_row = 0
        while confirmed < self.size:
            while len(in_flight) < self.window and next_offset < self.size:
                in_flight.append(self._send_chunk(source, next_offset))
                next_offset = in_flight[-1].end
            oldest = in_flight[0]
            waited_s = time.monotonic() - oldest.sent_at
            answer = self.link.receive(max(0.0, self._timeout(sum(f.encoded_bytes for f in in_flight)) - waited_s))
            if answer is None:  # the oldest request went unanswered: go back to what the board confirmed
                retries_in_a_row += 1
                if retries_in_a_row > MAX_RETRIES_IN_A_ROW:
                    raise LinkLostError(
                        f"{self.link.stream.url}: the board stopped answering the upload at byte {confirmed}",
                        "check the cable and power; `fieldkit update --resume` continues from where the board is",
                    )
                self.report.retransmissions += 1
                in_flight.clear()
                next_offset = confirmed
                continue
            position = next((i for i, f in enumerate(in_flight) if f.sequence == answer.header.sequence), None)
            if position is None:
                self.link.stale_answers += 1  # the answer to a request given up on
                continue
            flight = in_flight[position]
            parsed = parse_answer(answer, ImageUploadWriteResponse, f"the upload at byte {flight.start}")
            retries_in_a_row = 0
            board_offset = parsed.off if parsed.off is not None else flight.end
            if board_offset == flight.end or board_offset > flight.end:
                del in_flight[: position + 1]  # answers come in order: everything before it landed too
                confirmed = max(confirmed, board_offset)
                if board_offset > next_offset:
                    in_flight.clear()
                    next_offset = board_offset
            else:  # the board expects an earlier offset: a frame was lost on the way
                self.report.retransmissions += 1
                confirmed = board_offset
                in_flight.clear()
                next_offset = board_offset
            self._finished(parsed)
            self._progress(confirmed)

    def _send_chunk(self, source: BinaryIO, start: int) -> _InFlight:
        data = self._read(source, start, min(self.chunk, self.size - start))
        request = ImageUploadWriteRequest(off=start, data=data, sequence=self.link.next_sequence())
        encoded = self.link.encoded(request)
        self.link.stream.write(encoded)
        self.report.frames_sent += 1
        self.report.bytes_sent += len(data)
        return _InFlight(request.header.sequence, start, start + len(data), time.monotonic(), len(encoded))

    # -- helpers ------------------------------------------------------------------------

    def _read(self, source: BinaryIO, start: int, length: int) -> bytes:
        source.seek(self.source_offset + start)
        data = source.read(length)
        if len(data) != length:
            raise DeviceRefusedError(f"{self.path} ended before the image did")
        return data

    def _timeout(self, encoded_bytes: int) -> float:
        """How long an answer may take: the board's own time, plus the line's time for what is queued on it."""
        line_s = encoded_bytes / self.link_rate if self.link_rate else 0.0
        return self.answer_timeout_s + 2 * line_s

    def _finished(self, answer: ImageUploadWriteResponse) -> None:
        if answer.match is not None:
            self.report.match = answer.match

    def _progress(self, done: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done)
