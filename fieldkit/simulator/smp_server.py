"""A simulated MCU board's mcumgr SMP server, over the device model, on a pty or a TCP socket.

It answers as a Zephyr application with MCUboot does (img_mgmt, os_mgmt):

- ``image state`` read lists slot 0 (the running image) and slot 1 (what was
  uploaded), with version, image hash (the MCUboot SHA-256 TLV) and flags;
  write with a hash marks that image for test, write with ``confirm`` makes
  the running image permanent;
- ``image upload``: a request at offset 0 starts an upload (its ``len`` and
  ``sha``; when the slot already holds exactly that image the answer is at
  once its length and ``match``); one at the offset the board expects is
  written; one at any other offset is dropped and answered with the offset
  expected. The upload state is in RAM: a link drop keeps it, a reset or a
  power cut loses it. The last answer carries ``match``, the board's own
  check of the whole image against ``sha``;
- ``reset``: answered, then the board restarts. MCUboot swaps in an image
  marked for test and runs it once; unless it is confirmed, the next reset
  goes back to the previous image;
- ``mcumgr params`` reports ``buf_size`` and ``buf_count``; ``echo`` echoes;
  ``os info`` names the board (the hardware platform fieldkit's board table
  knows) and its serial number (the node name).

The line is a UART at ``baud`` (10 bits a byte, each direction on its own)
when a baud rate is given, and wears the fault plan's link faults
(link_faults.py): a cut, a stall, corrupted, dropped or noise bytes. A
power cut while the image is written ends the process, as losing power does.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import cbor2
from smp import header as smp_header
from smp import packet as smp_packet

from fieldkit.drivers.mcuboot import McubootImageError, read_mcuboot_image
from fieldkit.drivers.smp_link import LINE_LENGTH, FrameReader, decode_frame
from fieldkit.errors import LinkLostError
from fieldkit.fsutil import sha256_file
from fieldkit.simulator.device import DeviceError, SimulatedCharger
from fieldkit.simulator.faults import FaultPlan, PowerCut
from fieldkit.simulator.flash import other_slot
from fieldkit.simulator.link_faults import LinkFaults

ZEPHYR_BUF_SIZE: Final = 384  # CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE's default
ZEPHYR_BUF_COUNT: Final = 4  # CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT's default
# What a request costs the board besides the line: its SMP work queue's turnaround (decode, dispatch,
# encode), and writing to internal flash with its erase (an nRF52840: 85 ms to erase a 4 KiB page and
# 41 us a word to write it, about 32 KiB/s). Without them a stop-and-wait client would look as fast as
# a windowed one, as it never is on a board.
TURNAROUND_S: Final = 0.005
UART_CATCH_UP_S: Final = 0.002
FLASH_BYTES_PER_S: Final = 32 * 1024
MGMT_ERR_EINVAL: Final = 3
MGMT_ERR_ENOENT: Final = 5
MGMT_ERR_EBADSTATE: Final = 6
MGMT_ERR_ENOTSUP: Final = 8
POWER_CUT_EXIT: Final = 137
OP_READ, OP_WRITE = 0, 2
GROUP_OS, GROUP_IMAGE = 0, 1
OS_ECHO, OS_RESET, OS_PARAMS, OS_INFO = 0, 5, 6, 7
IMAGE_STATE, IMAGE_UPLOAD, IMAGE_ERASE = 0, 1, 5
READ_BYTES: Final = 4096


class Endpoint(Protocol):
    """The board's end of the line."""

    def read(self, max_bytes: int, timeout_s: float) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class FdEndpoint:
    """A file descriptor (a pty's master, a connected socket's fileno) as the board's end of the line."""

    def __init__(self, fd: int, owned: object | None = None) -> None:
        self.fd = fd
        self._owned = owned  # the socket object keeping ``fd`` open, if any
        self.slave_fd: int | None = None  # a pty's other end, held so the master never reads EIO
        self.closed = False

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
        if not ready:
            return b""
        try:
            data = os.read(self.fd, max_bytes)
        except OSError:  # the other end went away (a pty's slave closed: EIO)
            data = b""
        if not data:
            raise EOFError("the line was closed")
        return data

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if isinstance(self._owned, socket.socket):
                self._owned.close()
            else:
                for fd in (self.fd, self.slave_fd):
                    if fd is not None:
                        with contextlib.suppress(OSError):
                            os.close(fd)


@dataclass
class UploadSession:
    """img_mgmt's upload state: in the board's RAM, so a reset or power cut forgets it."""

    size: int
    sha: bytes
    off: int = 0


class SmpBoard:
    """One simulated board's SMP server over its state directory."""

    def __init__(
        self,
        state_dir: Path,
        faults: FaultPlan | None = None,
        buf_size: int = ZEPHYR_BUF_SIZE,
        buf_count: int = ZEPHYR_BUF_COUNT,
        baud: int | None = None,
        component: str = "app",
        turnaround_s: float = TURNAROUND_S,
        flash_bytes_per_s: int | None = FLASH_BYTES_PER_S,
    ) -> None:
        self.state_dir = state_dir
        self.turnaround_s = turnaround_s
        self.flash_bytes_per_s = flash_bytes_per_s
        self.plan = faults or FaultPlan()
        self.buf_size = buf_size
        self.buf_count = buf_count
        self.component = component
        rate = baud // 10 if baud else None
        # A UART idle is idle: a byte takes its time on the line whenever it is sent (only sleep overshoot is
        # caught up), so a client that waits for each answer pays the line for every request afresh.
        self.rx = LinkFaults(self.plan, idle_credit_s=UART_CATCH_UP_S)  # what arrives, and its faults
        self.rx.plan.rate_bytes_per_s = rate
        self.tx = LinkFaults(FaultPlan(rate_bytes_per_s=rate), idle_credit_s=UART_CATCH_UP_S)  # the answers
        self.session: UploadSession | None = None
        # Image bytes that arrived in upload requests, and those written: the difference is what a client
        # sent again or out of order (dropped and answered with the offset expected).
        self.data_received = 0
        self.data_written = 0
        self.stopping = threading.Event()
        self._closing = threading.Event()
        self._reset_requested = False
        self.frames_dropped = 0  # no free buffer, or longer than one

    def charger(self) -> SimulatedCharger:
        return SimulatedCharger(self.state_dir, self.plan)

    # -- serving ----------------------------------------------------------------------

    def serve(self, endpoint: Endpoint, close_at_end: bool = True) -> None:
        """Answer requests on ``endpoint`` until it closes, the link is cut, or ``stop``.

        As on the board: the UART receives on its own (here a thread, paced at the line rate) into
        ``buf_count`` buffers of ``buf_size`` bytes, and the SMP work queue takes one request at a time,
        spends its turnaround and flash time on it, and sends the answer. A frame that finds no free
        buffer, or is longer than one, is dropped, as Zephyr's serial transport drops it.
        """
        frames: queue.Queue[bytes | None] = queue.Queue()
        receiver = threading.Thread(target=self._receive, args=(endpoint, frames), daemon=True)
        receiver.start()
        try:
            while not self.stopping.is_set():
                try:
                    frame = frames.get(timeout=0.1)
                except queue.Empty:
                    continue
                if frame is None:
                    return  # the line closed or was cut: the board keeps its RAM
                answer = self.answer(frame)
                if answer is None:
                    continue
                self.tx.pace(len(answer))
                try:
                    endpoint.write(answer)
                except OSError:  # the laptop's end went away: the answer is lost, as on a real line
                    return
                if self._reset_requested:
                    self._reset()
        except PowerCut:
            os._exit(POWER_CUT_EXIT)
        finally:
            self._closing.set()
            receiver.join(timeout=5)
            self._closing.clear()
            if close_at_end:
                endpoint.close()

    def _receive(self, endpoint: Endpoint, frames: queue.Queue[bytes | None]) -> None:
        reader = FrameReader()
        try:
            while not (self.stopping.is_set() or self._closing.is_set()):
                try:
                    data = endpoint.read(READ_BYTES, 0.1)
                    self.rx.wait_while_stalled()  # a stalled line: nothing more arrives until released
                except (EOFError, OSError, LinkLostError):  # the laptop's end went away, or the stall gave up
                    return
                if not data:
                    continue
                start = self.rx.received
                passed = self.rx.admit(len(data))
                data = self.plan.line_noise(start, data[:passed])  # corrupt:byte= is a flash fault (device.py)
                self.rx.pace(passed)
                reader.feed(data)
                for frame in reader.frames():
                    if len(frame) <= self.buf_size and frames.qsize() < self.buf_count:
                        frames.put(frame)
                    else:
                        self.frames_dropped += 1
                if self.rx.cut:
                    return  # the cable came out
        finally:
            frames.put(None)

    def stop(self) -> None:
        self.stopping.set()

    def _reset(self) -> None:
        self._reset_requested = False
        self.session = None  # RAM is gone
        charger = self.charger()
        charger.power_on(max_boot_attempts=1)  # MCUboot: an unconfirmed image gets one boot

    # -- requests -------------------------------------------------------------------------

    def answer(self, frame: bytes) -> bytes | None:
        request = decode_frame(frame)
        if request is None:
            return None
        written_before = self.data_written
        head = request.header
        try:
            body = self._handle(int(head.op), int(head.group_id), int(head.command_id), request.body)
        except DeviceError as exc:
            body = {"rc": MGMT_ERR_EBADSTATE, "rsn": exc.message}
        flash_s = (self.data_written - written_before) / self.flash_bytes_per_s if self.flash_bytes_per_s else 0.0
        time.sleep(self.turnaround_s + flash_s)  # the board's own time for the request
        response_op = OP_READ + 1 if int(head.op) == OP_READ else OP_WRITE + 1
        payload = cbor2.dumps(body)
        reply = smp_header.Header(
            op=smp_header.OP(response_op),
            version=head.version,
            flags=smp_header.Flag(0),
            length=len(payload),
            group_id=head.group_id,
            sequence=head.sequence,
            command_id=head.command_id,
        )
        return b"".join(smp_packet.encode(bytes(reply) + payload, line_length=LINE_LENGTH))

    def _handle(self, op: int, group: int, command: int, body: dict[str, object]) -> dict[str, object]:
        if group == GROUP_OS:
            if command == OS_ECHO and op == OP_WRITE:
                return {"r": str(body.get("d", ""))}
            if command == OS_PARAMS and op == OP_READ:
                return {"buf_size": self.buf_size, "buf_count": self.buf_count}
            if command == OS_INFO and op == OP_READ:
                return {"output": self._os_info(str(body.get("format", "s")))}
            if command == OS_RESET and op == OP_WRITE:
                self._reset_requested = True
                return {}
        if group == GROUP_IMAGE:
            if command == IMAGE_STATE:
                return self._image_state(body) if op == OP_WRITE else {"images": self._images()}
            if command == IMAGE_UPLOAD and op == OP_WRITE:
                return self._upload(body)
        return {"rc": MGMT_ERR_ENOTSUP}

    def _os_info(self, format_: str) -> str:
        identity = self.charger().identity
        words = {"s": "Zephyr", "n": identity["serial"], "i": f"{identity['model']}/{identity['hardware_revision']}",
                 "o": "Zephyr"}  # fmt: skip
        return " ".join(words[c] for c in format_ if c in words)

    def _slot_image(self, slot_name: str) -> tuple[str, bytes] | None:
        path = self.charger().slot_path(self.component, slot_name)
        try:
            with path.open("rb") as handle:
                image = read_mcuboot_image(handle, path.stat().st_size)
        except (OSError, McubootImageError):
            return None
        version = image.version if not image.build else f"{image.version}.{image.build}"
        return version, image.image_hash

    def _images(self) -> list[dict[str, object]]:
        state = self.charger().components[self.component]
        other = other_slot(state.active)
        images: list[dict[str, object]] = []
        running = self._slot_image(state.active)
        if running is not None:
            images.append({"slot": 0, "version": running[0], "hash": running[1], "bootable": True,
                           "active": True, "confirmed": state.active == state.committed,
                           "permanent": False, "pending": False})  # fmt: skip
        uploaded = self._slot_image(other) if self.session is None or self.session.off == self.session.size else None
        if uploaded is not None:
            pending = state.pending == other
            images.append({"slot": 1, "version": uploaded[0], "hash": uploaded[1], "bootable": True,
                           "active": False, "confirmed": False, "permanent": False, "pending": pending})  # fmt: skip
        return images

    def _image_state(self, body: dict[str, object]) -> dict[str, object]:
        charger = self.charger()
        state = charger.components[self.component]
        if body.get("confirm") is True and body.get("hash") is None:
            if state.pending is not None and state.active == state.pending:
                charger.mark_good(self.component)
            return {"images": self._images()}
        wanted = body.get("hash")
        other = other_slot(state.active)
        uploaded = self._slot_image(other)
        running = self._slot_image(state.active)
        if running is not None and wanted == running[1]:
            if body.get("confirm") is True and state.pending is not None and state.active == state.pending:
                charger.mark_good(self.component)
            return {"images": self._images()}
        if uploaded is None or wanted != uploaded[1]:
            return {"rc": MGMT_ERR_ENOENT, "rsn": "no image with that hash"}
        if body.get("confirm") is True:
            # A permanent swap, skipping the trial boot: fieldkit never asks for one, and this board refuses it.
            return {"rc": MGMT_ERR_ENOTSUP, "rsn": "this board only takes an image for test"}
        if state.pending is None:
            path = charger.slot_path(self.component, other)
            charger.finish_install(self.component, _file_sha256(path))  # model, component, floor checked here
        return {"images": self._images()}

    def _upload(self, body: dict[str, object]) -> dict[str, object]:
        off, data = body.get("off"), body.get("data", b"")
        if not isinstance(off, int) or not isinstance(data, bytes):
            return {"rc": MGMT_ERR_EINVAL}
        self.data_received += len(data)
        charger = self.charger()
        state = charger.components[self.component]
        if off == 0:
            size, sha = body.get("len"), body.get("sha", b"")
            if not isinstance(size, int) or not isinstance(sha, bytes) or size <= 0:
                return {"rc": MGMT_ERR_EINVAL}
            if state.pending is not None:  # the slot holds an image waiting for (or on) its trial
                return {"rc": MGMT_ERR_EBADSTATE, "rsn": "an image is already pending"}
            other = other_slot(state.active)
            path = charger.slot_path(self.component, other)
            if len(sha) == 32 and path.exists() and path.stat().st_size == size and _file_sha256(path) == sha.hex():
                self.session = None
                return {"off": size, "match": True}  # the slot holds this very image already
            charger.begin_install(self.component)
            self.session = UploadSession(size, sha)
        session = self.session
        if session is None or off != session.off:
            return {"off": session.off if session is not None else 0}
        if data:
            if session.off + len(data) > session.size:
                return {"rc": MGMT_ERR_EINVAL, "rsn": "data past the image's length"}
            charger.write_slot(self.component, session.off, data)
            session.off += len(data)
            self.data_written += len(data)
        answer: dict[str, object] = {"off": session.off}
        if session.off == session.size:
            path = charger.slot_path(self.component, other_slot(state.active))
            answer["match"] = len(session.sha) == 32 and _file_sha256(path) == session.sha.hex()
        return answer


def _file_sha256(path: Path) -> str:
    return sha256_file(path)[1]


# -- where the board is served -------------------------------------------------------------


def open_pty() -> tuple[FdEndpoint, str]:
    """A pseudo-terminal pair in raw mode: the board's end, and the device path a client opens."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    endpoint = FdEndpoint(master)
    endpoint.slave_fd = slave
    return endpoint, path


class TcpLine:
    """The board behind a serial device server: ``socket://HOST:PORT``, one client at a time."""

    def __init__(self, board: SmpBoard, host: str = "127.0.0.1", port: int = 0) -> None:
        self.board = board
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.url = f"socket://{host}:{self.port}"

    def serve_forever(self) -> None:
        while not self.board.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.board.rx.reconnect()  # the cable is back in: the cut happened once
            self.board.serve(FdEndpoint(client.fileno(), client))

    def stop(self) -> None:
        self.board.stop()
        self.listener.close()


class PtyLine:
    """The board on a pseudo-terminal: what a USB-serial adapter or a CDC-ACM board looks like locally."""

    def __init__(self, board: SmpBoard) -> None:
        self.board = board
        self.endpoint, self.path = open_pty()
        self.url = self.path

    def serve_forever(self) -> None:
        try:
            while not self.board.stopping.is_set():
                self.board.serve(self.endpoint, close_at_end=False)
                self.board.rx.reconnect()  # a cut on a local line: bytes were lost, the port stays
        finally:
            self.endpoint.close()

    def stop(self) -> None:
        self.board.stop()
