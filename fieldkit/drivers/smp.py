"""MCU boards over mcumgr SMP on a byte stream: identify, upload, test, reset, confirm or go back.

The board is a Zephyr (or other mcumgr) application under MCUboot, reached
over a serial line: a local port (a USB-serial adapter, a USB CDC-ACM
board), a serial device server (``rfc2217://``, ``socket://``). Addresses:

    smp+serial:///dev/ttyACM0?baud=115200
    smp+socket://10.0.0.9:4001          (a serial device server's raw TCP port)
    smp+rfc2217://10.0.0.9:2217?baud=115200

What the board is: its OS info names its hardware platform and serial
number; fieldkit's board table (smp_boards.toml) says which vendor, model,
revision and component a platform is (facts given by the table, marked so).
What an SMP board cannot tell, whether a vehicle is charging and its
anti-rollback floor, stays unknown for preflight to ask.

The update: the bundle's payload must be an MCUboot image of the bundle's
version whose hash TLV holds (mcuboot.py), checked before a byte is sent;
the upload keeps a window of requests in flight (smp_upload.py) and resumes
where the board stands; the verification is the board's own: its check of
the whole upload against its SHA-256, and the image hash it reports for the
slot. Then ``image state`` test, reset, health (the new image runs, on
trial, and the board answers), and confirm; or back: an unconfirmed image
is left by resetting, and MCUboot boots the confirmed one again.
"""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from smp.image_management import (
    ImageState,
    ImageStatesReadRequest,
    ImageStatesReadResponse,
    ImageStatesWriteRequest,
    ImageStatesWriteResponse,
)
from smp.os_management import (
    EchoWriteRequest,
    EchoWriteResponse,
    MCUMgrParametersReadRequest,
    MCUMgrParametersReadResponse,
    OSApplicationInfoReadRequest,
    OSApplicationInfoReadResponse,
    ResetWriteRequest,
    ResetWriteResponse,
)

from fieldkit.domain import (
    Capabilities,
    ChargerIdentity,
    ComponentInfo,
    FactSource,
    HealthCallback,
    HealthReport,
    PayloadSource,
    ProgressCallback,
    Resume,
    Revert,
    Verification,
    health_cancelled,
    health_pause,
    versions_text,
)
from fieldkit.drivers.mcuboot import McubootImage, McubootImageError, read_mcuboot_image
from fieldkit.drivers.smp_link import SmpError, SmpLink
from fieldkit.drivers.smp_upload import WindowedUpload
from fieldkit.errors import DeviceRefusedError, LinkLostError, TransportError, UsageError
from fieldkit.transports.byte_stream import DEFAULT_BAUD, ByteStream, LineSettings

AnswerT = TypeVar("AnswerT")
SCHEMES: Final = {"smp+serial": "", "smp+socket": "socket://", "smp+rfc2217": "rfc2217://"}
INSTALL_METHOD: Final = "mcumgr-smp"
# Zephyr's serial transport defaults, until the board reports its own (MCUmgr parameters).
DEFAULT_BUF_SIZE: Final = 384
DEFAULT_BUF_COUNT: Final = 4


def serial_url(address: str) -> tuple[str, LineSettings]:
    """The pyserial URL and line settings an ``smp+...`` address names.

    Query: ``baud`` (default 115200), ``parity`` (N, E or O), ``stopbits`` (1 or 2), ``rtscts`` (0 or 1).
    """
    parts = urlsplit(address)
    prefix = SCHEMES.get(parts.scheme)
    if prefix is None:
        raise UsageError(f"{address!r} is not an SMP board address", "use smp+serial:///dev/ttyACM0?baud=115200, "
                         "smp+socket://HOST:PORT or smp+rfc2217://HOST:PORT")  # fmt: skip
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"baud", "parity", "stopbits", "rtscts"}
    if unknown:
        raise UsageError(
            f"{address!r}: unknown setting {sorted(unknown)[0]!r}", "settings: baud, parity, stopbits, rtscts"
        )
    baud, parity = query.get("baud", str(DEFAULT_BAUD)), query.get("parity", "N").upper()
    stop_bits, rtscts = query.get("stopbits", "1"), query.get("rtscts", "0")
    if not baud.isdigit() or int(baud) <= 0:
        raise UsageError(f"{address!r}: baud={baud!r} is not a baud rate", "e.g. ?baud=115200")
    if parity not in ("N", "E", "O") or stop_bits not in ("1", "2") or rtscts not in ("0", "1"):
        raise UsageError(f"{address!r}: parity, stopbits or rtscts is not one of N/E/O, 1/2, 0/1", "e.g. ?parity=E")
    line = LineSettings(int(baud), cast(Literal["N", "E", "O"], parity), 2 if stop_bits == "2" else 1, rtscts == "1")
    if prefix:
        if not parts.hostname or parts.port is None:
            raise UsageError(f"{address!r} names no host and port", f"use {parts.scheme}://HOST:PORT")
        return f"{prefix}{parts.netloc}", line
    if not parts.path:
        raise UsageError(f"{address!r} names no port", "use smp+serial:///dev/ttyACM0 (or smp+serial:///COM3)")
    port = parts.path[1:] if re.fullmatch(r"/COM\d+", parts.path, re.IGNORECASE) else parts.path
    return port, line


@dataclass(frozen=True)
class Board:
    """A hardware platform, as fieldkit's board table names it."""

    vendor: str
    model: str
    hardware_revision: str
    component: str  # the bundle component its application image is


def load_boards() -> dict[str, Board]:
    text = resources.files("fieldkit.drivers").joinpath("smp_boards.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text)
    return {
        str(platform): Board(str(b["vendor"]), str(b["model"]), str(b["hardware_revision"]), str(b["component"]))
        for platform, b in table.get("boards", {}).items()
    }


class SmpDriver:
    def __init__(
        self,
        address: str,
        open_stream: Callable[[str, LineSettings], ByteStream],
        answer_timeout_s: float = 2.0,
        reset_timeout_s: float = 30.0,
        health_stable_s: float = 2.0,
        poll_s: float = 0.2,
        attempts: int = 3,
    ) -> None:
        self.address = address
        self.attempts = attempts  # tries per request (a discovery probe makes one)
        self.url, self.line = serial_url(address)
        self.baud = self.line.baud
        self._open_stream = open_stream
        self.answer_timeout_s = answer_timeout_s
        self.reset_timeout_s = reset_timeout_s
        self.health_stable_s = health_stable_s
        self.poll_s = poll_s
        self._link: SmpLink | None = None
        self._params: tuple[int, int] | None = None
        self._images: dict[str, McubootImage] = {}  # payload SHA-256 -> its checked MCUboot image
        self._upload_match: dict[str, bool | None] = {}
        self._capabilities = Capabilities(
            "serial", frozenset({INSTALL_METHOD}), Resume.DEVICE_OFFSET, Verification.DEVICE_IMAGE_HASH,
            True, Revert.AFTER_TRIAL, True, self.baud // 10,
        )  # fmt: skip

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    # -- the link -------------------------------------------------------------------------

    def _smp(self) -> SmpLink:
        if self._link is None:
            self._link = SmpLink(self._open_stream(self.url, self.line))
        return self._link

    def close(self) -> None:
        if self._link is not None:
            self._link.stream.close()
            self._link = None

    def _ask(self, call: Callable[[SmpLink], AnswerT]) -> AnswerT:
        try:
            return call(self._smp())
        except TransportError:
            self.close()  # a dead line: open it again next time
            raise

    def _parameters(self) -> tuple[int, int]:
        if self._params is None:
            try:
                answer = self._ask(lambda link: link.request(
                    MCUMgrParametersReadRequest, MCUMgrParametersReadResponse, "the MCUmgr parameters",
                    self.answer_timeout_s))  # fmt: skip
                self._params = (max(64, answer.buf_size), max(1, answer.buf_count))
            except SmpError:  # an older mcumgr without the parameters command: Zephyr's defaults
                self._params = (DEFAULT_BUF_SIZE, DEFAULT_BUF_COUNT)
        return self._params

    def _image_list(self) -> list[ImageState]:
        answer = self._ask(lambda link: link.request(
            ImageStatesReadRequest, ImageStatesReadResponse, "the image list", self.answer_timeout_s))  # fmt: skip
        return [image for image in answer.images if (image.image or 0) == 0]

    def _slots(self) -> tuple[ImageState | None, ImageState | None]:
        """The image running (slot 0) and the one beside it (slot 1), as the board lists them."""
        images = self._image_list()
        return next((i for i in images if i.slot == 0), None), next((i for i in images if i.slot == 1), None)

    # -- identity -------------------------------------------------------------------------

    async def identify(self) -> ChargerIdentity:
        return await asyncio.to_thread(self.identify_blocking)

    def identify_blocking(self) -> ChargerIdentity:
        """``identify`` for a caller in a worker thread (discovery probes ports this way)."""
        info = self._ask(lambda link: link.request(
            OSApplicationInfoReadRequest, OSApplicationInfoReadResponse, "the board's OS info",
            self.answer_timeout_s, attempts=self.attempts, format="in"))  # fmt: skip
        words = info.output.split()
        platform, serial = [*words, "", ""][:2]
        board = load_boards().get(platform)
        self._parameters()
        component = board.component if board is not None else "app"
        running, second = self._slots()
        trial = running is not None and not running.confirmed
        sources = {"vendor": FactSource.PROFILE, "model": FactSource.PROFILE, "hardware_revision": FactSource.PROFILE}
        return ChargerIdentity(
            vendor=board.vendor if board else "",
            model=board.model if board else "",
            hardware_revision=board.hardware_revision if board else "",
            serial=serial,
            address=self.address,
            components={
                component: ComponentInfo(
                    component,
                    running.version if running else None,
                    "0",
                    "pending" if trial else "committed",
                    "1" if second is not None and second.pending else ("0" if trial else None),
                    INSTALL_METHOD,
                    second.version if second is not None and second.pending else None,
                )
            },
            security_version_floor=None,  # SMP has no way to say: unknown, for the technician to confirm
            transaction_active=None,
            profile=f"smp board {platform or 'unknown'}",
            fact_sources=sources if board is not None else {},
        )

    async def installed(self, component: str, version: str) -> bool | None:
        identity = await self.identify()
        info = identity.components.get(component)
        if info is None:
            return False
        return info.pending_version == version or (info.state == "pending" and info.version == version)

    # -- the image ----------------------------------------------------------------------

    def _checked_image(self, payload: PayloadSource) -> McubootImage:
        image = self._images.get(payload.sha256)
        if image is None:
            with payload.path.open("rb") as source:
                source.seek(payload.offset)
                image = read_mcuboot_image(source, payload.size_bytes)
            if payload.version is not None and not image.matches_version(payload.version):
                raise McubootImageError(
                    f"the MCUboot image is version {image.version}+{image.build}, the bundle says {payload.version}",
                    "the bundle's payload is not the release it claims; ask the release engineer for a good bundle",
                )
            self._images[payload.sha256] = image
        return image

    async def transfer(self, component: str, payload: PayloadSource, on_progress: ProgressCallback | None) -> int:
        return await asyncio.to_thread(self._transfer, payload, on_progress)

    def _transfer(self, payload: PayloadSource, on_progress: ProgressCallback | None) -> int:
        self._checked_image(payload)  # before a byte is sent
        buf_size, buf_count = self._parameters()
        upload = WindowedUpload(
            self._smp(), payload.path, payload.offset, payload.size_bytes, buf_size, buf_count,
            self.answer_timeout_s, self.baud // 10 if self.baud else None, on_progress,
        )  # fmt: skip
        try:
            report = upload.run()
        except TransportError:
            self.close()
            raise
        self._upload_match[payload.sha256] = report.match
        if report.match is False:
            raise DeviceRefusedError(
                "the board's check of the uploaded image against its SHA-256 failed",
                "bytes were damaged on the line; the next attempt uploads the image again",
            )
        return report.bytes_sent

    async def verify(self, component: str, payload: PayloadSource) -> str:
        return await asyncio.to_thread(self._verify, payload)

    def _verify(self, payload: PayloadSource) -> str:
        image = self._checked_image(payload)
        second = self._slots()[1]
        reported = bytes(second.hash) if second is not None and second.hash is not None else None
        if reported != image.image_hash:
            raise DeviceRefusedError(
                "the image hash the board reports for slot 1 does not match the bundle's image "
                f"({reported.hex()[:16] if reported else 'none'}..., expected {image.image_hash.hex()[:16]}...)",
                "the upload did not land whole; it will be sent again",
            )
        match = self._upload_match.get(payload.sha256)
        checked = "the board's check of the whole upload passed, " if match else ""
        return f"{Verification.DEVICE_IMAGE_HASH.value}: {checked}slot 1 image hash {image.image_hash.hex()}"

    async def activate(self, component: str, sha256: str, install_method: str) -> None:
        if install_method != INSTALL_METHOD:
            raise DeviceRefusedError(f"an SMP board cannot install with {install_method!r}")
        image = self._images.get(sha256)
        if image is None:
            raise DeviceRefusedError("no verified image to test", "transfer and verify it first")
        await asyncio.to_thread(self._test, image.image_hash)

    def _test(self, image_hash: bytes) -> None:
        self._ask(lambda link: link.request(
            ImageStatesWriteRequest, ImageStatesWriteResponse, "marking the image for test",
            self.answer_timeout_s, hash=image_hash, confirm=False))  # fmt: skip

    # -- reset, health, confirm, back ----------------------------------------------------------

    async def reboot(self) -> str | None:
        await asyncio.to_thread(self._reset)
        return None

    def _reset(self) -> None:
        """Reset the board and return once it answers again (MCUboot may first swap the images)."""
        with_answer = True
        try:
            self._ask(lambda link: link.request(
                ResetWriteRequest, ResetWriteResponse, "the reset", self.answer_timeout_s, attempts=1))  # fmt: skip
        except LinkLostError:
            with_answer = False  # a board may reset before its answer leaves it
        deadline = time.monotonic() + self.reset_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            time.sleep(self.poll_s)
            try:
                self._ask(lambda link: link.request(
                    EchoWriteRequest, EchoWriteResponse, "an echo", self.answer_timeout_s, attempts=1,
                    d="fieldkit"))  # fmt: skip
                return
            except TransportError as exc:
                last = exc.message
        raise LinkLostError(
            f"the board did not answer within {self.reset_timeout_s:.0f} s of its reset"
            f"{'' if with_answer else ' (it never acknowledged the reset)'}: {last}",
            "check its power and the line; `fieldkit update --resume` continues the job",
        )

    async def health(
        self, expected_versions: dict[str, str], baseline_meter_wh: int, on_poll: HealthCallback | None = None
    ) -> HealthReport:
        return await asyncio.to_thread(self._health, expected_versions, on_poll)

    def _health(self, expected_versions: dict[str, str], on_poll: HealthCallback | None) -> HealthReport:
        """Healthy: the new image runs (on trial) and the board keeps answering for a stable window."""
        deadline = time.monotonic() + max(self.reset_timeout_s, self.health_stable_s * 3)
        stable_since: float | None = None
        last = HealthReport(False, "no answer yet")
        while time.monotonic() < deadline:
            try:
                running = self._slots()[0]
            except TransportError as exc:
                last, stable_since = HealthReport(False, f"the board is not answering: {exc.message}"), None
                if not health_pause(on_poll, last, self.poll_s):
                    return health_cancelled(last)
                continue
            running_version: str | None = running.version if running is not None else None
            versions: dict[str, str | None] = dict.fromkeys(expected_versions, running_version)
            wrong = {n: v for n, v in expected_versions.items() if not _same_version(versions.get(n), v)}
            if wrong:
                detail = f"the board runs {versions_text(versions)}, not {versions_text(expected_versions)}"
                return HealthReport(False, f"{detail}: MCUboot went back, or the image did not start",
                                    running_versions=versions)  # fmt: skip
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= self.health_stable_s:
                return HealthReport(True, "the new image runs and the board answers", running_versions=versions)
            watched_s = time.monotonic() - stable_since
            last = HealthReport(False, f"the new image runs; watched {watched_s:.0f} of {self.health_stable_s:.0f} s",
                                running_versions=versions)  # fmt: skip
            if not health_pause(on_poll, last, self.poll_s):
                return health_cancelled(last)
        return HealthReport(False, f"not healthy in time: {last.detail}", running_versions=last.running_versions)

    async def commit(self, install_methods: Mapping[str, str], expected_versions: Mapping[str, str]) -> None:
        await asyncio.to_thread(self._confirm, expected_versions)

    def _confirm(self, expected_versions: Mapping[str, str]) -> None:
        running = self._slots()[0]
        if running is None or not all(_same_version(running.version, v) for v in expected_versions.values()):
            raise DeviceRefusedError(
                f"not committing: the board runs {running.version if running else 'nothing'}, "
                f"not {', '.join(expected_versions.values())}",
                "the new image is not running; roll back or install again",
            )
        if running.confirmed:
            return  # confirmed already (a resumed job commits twice)
        self._ask(lambda link: link.request(
            ImageStatesWriteRequest, ImageStatesWriteResponse, "confirming the image", self.answer_timeout_s,
            confirm=True))  # fmt: skip

    async def rollback(
        self, install_methods: Mapping[str, str], previous_versions: Mapping[str, str | None] | None = None
    ) -> str:
        return await asyncio.to_thread(self._go_back, previous_versions)

    def _go_back(self, previous: Mapping[str, str | None] | None) -> str:
        running, second = self._slots()
        if running is not None and not running.confirmed:
            self._reset()  # MCUboot: an unconfirmed image does not get a second boot
            return f"the unconfirmed {running.version} was left: rebooted into the committed image"
        if second is not None and second.pending:
            # MCUboot cannot withdraw a test request: the verified new image boots once, unconfirmed, and the
            # reset after that goes back. Nothing good is ever marked bad on the way.
            self._reset()
            self._reset()
            return (
                f"{second.version} was marked for test and cannot be withdrawn: it booted once, unconfirmed, "
                "and the board rebooted into the committed image"
            )
        if previous is None:
            raise DeviceRefusedError(
                f"nothing to roll back: {running.version if running else 'the image'} runs and is confirmed",
                "rollback leaves an image that has not been confirmed; this board has none",
            )
        return "nothing pending: the confirmed image runs"

    async def discard(self, sha256s: Sequence[str]) -> None:
        """Nothing to remove: the image lies in the board's second slot, which the next upload overwrites."""
        return


def _same_version(reported: str | None, expected: str) -> bool:
    """Does the board's version (Zephyr prints "1.4.0", or "1.4.0.7" with a build number) name the bundle's
    ("1.4.0" for any build, "1.4.0+7" for build 7)?"""
    if reported is None:
        return False
    base, _, build = expected.partition("+")
    parts = reported.split(".")
    return parts[:3] == base.split(".")[:3] and (not build or parts[3:4] == [build])
