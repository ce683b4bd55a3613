"""Driver for Linux-based chargers over SSH: SFTP staging, the charger's updater, health.

The charger side is what an embedded Linux controller offers: its updater,
chosen per component by the manifest's install method (see ``updaters``:
RAUC, SWUpdate, Mender, or the vendor's own script) and ``reboot``. Where
identity, status and boot id come from is the charger's *profile* (see
profiles.py): a stock RAUC system needs nothing fieldkit-specific; chargers
that ship fieldkit's helpers (``charger-identity --json``,
``charger-status --json``) report more. RAUC is driven by what ``rauc
status`` says (see rauc.py), SWUpdate and Mender by what U-Boot's
environment says (swupdate.py, mender.py), so no command can mark a good
slot bad or roll back what is not pending.

A reboot is recognised by the charger's boot id changing, not by the
``reboot`` command returning: a real system keeps answering SSH for a moment
while it shuts down.

Resume: the staged file is named by its SHA-256. Before sending, the driver
asks the charger for the size of what is there and the SHA-256 of that
prefix; if the prefix matches the image, only the rest is sent. A journal on
the laptop is a hint for progress reporting; the charger's copy is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypedDict

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
from fieldkit.drivers import mender, rauc, swupdate
from fieldkit.drivers.helpers_protocol import HelperIdentity, HelperStatus, parse_answer
from fieldkit.drivers.profiles import Profile, ProfileLibrary, fact_script, load_profiles, transaction_state
from fieldkit.errors import DeviceRefusedError, HostUnreachableError, LinkLostError, TransportError
from fieldkit.fsutil import sha256_file
from fieldkit.safejson import parse_bounded
from fieldkit.transports.remote_shell import RemoteShell
from fieldkit.transports.striped_upload import BLOCK_BYTES, hole_bound_bytes

LOGFMT_LINE: Final = re.compile(r'level=(\w+) msg="((?:[^"\\]|\\.)*)"')
REASON_WORDS: Final = ("error", "failed", "fail", "refused", "mismatch", "invalid", "denied", "not ")

# On the charger. /var/tmp survives a reboot (/tmp is often tmpfs), so a transfer can resume across
# one; staged files are named by SHA-256 and hash-checked before use, so nothing planted there installs.
STAGING_DIR: Final = "/var/tmp/fieldkit-staging"  # noqa: S108
VENDOR_UPDATE_COMMAND: Final = "charger-update"


STAGING_DIR_MAX_CHARS: Final = 200
SAFE_STAGING_DIR: Final = re.compile(r"^(/[A-Za-z0-9._+-]+)+$")
MAX_HELPER_JSON_BYTES: Final = 1024 * 1024  # charger-identity/-status answers are a few KiB


def reported_staging_dir(value: str | None) -> str:
    """The staging directory a helpers charger names in its identity (or None), as used: "" when none.

    It ends up in shell commands (quoted) and in file names the laptop reads back, so only a plain
    absolute path is taken; anything else is refused with what to fix.
    """
    if value is None:
        return ""
    if (
        len(value) > STAGING_DIR_MAX_CHARS
        or not SAFE_STAGING_DIR.match(value)
        or any(part in (".", "..") for part in value.split("/"))
    ):
        raise DeviceRefusedError(
            f"the charger names a staging directory fieldkit will not use: {value[:80]!r}",
            "charger-identity's staging_dir must be a plain absolute path (letters, digits, . _ + -)",
        )
    return value


def remote_sha256(source: str = "") -> str:
    """A charger-side command printing the SHA-256 (hex, first word) of ``source``, or of stdin.

    ``source`` is an already shell-quoted path. OpenSSL when the charger has
    its CLI: it uses the CPU's SHA instructions (ARMv8 crypto extensions, x86
    SHA-NI) where coreutils' and BusyBox's sha256sum do not (64 MiB: 0.06 s
    against 0.19 s on the development machine), and an update hashes its
    image on the charger once or twice (resume check, verify). Chosen by
    presence rather than `a || b`, which would hash a drained stdin after a
    failed openssl.
    """
    return f"if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r {source}; else sha256sum {source}; fi"


class StagingFacts(TypedDict):
    """What preflight learns of the charger's staging directory (ChargerIdentity's staging fields)."""

    staging_dir: str
    staging_problem: str | None
    staging_free_bytes: int | None


@dataclass(frozen=True)
class Updater:
    """The charger-side command lines of one updater; ``{image}`` is the staged image's quoted path."""

    install: str
    commit: str
    rollback: str


def updaters(vendor_command: str = VENDOR_UPDATE_COMMAND) -> dict[str, Updater]:
    return {
        # RAUC: commit and roll back are decided from `rauc status` (rauc.py); these are never sent blind.
        "rauc": Updater("rauc install {image}", rauc.MARK_GOOD, rauc.RESTORE_BOOTED),
        # SWUpdate: the bootloader's `ustate` is the transaction marker (0 OK, 3 FAILED).
        "swupdate": Updater("swupdate -i {image}", "fw_setenv ustate 0", "fw_setenv ustate 3"),
        # Mender standalone mode (mender-update, Mender 4+).
        "mender": Updater("mender-update install {image}", "mender-update commit", "mender-update rollback"),
        # A vendor script following the same three verbs; its name is the `vendor_update_command` setting.
        "script": Updater(
            f"{vendor_command} install {{image}}", f"{vendor_command} commit", f"{vendor_command} rollback"
        ),
    }


# A profile's fact names, as ChargerIdentity names the same facts.
IDENTITY_FIELD_OF_FACT: Final = {"transaction": "transaction_active"}
# A charger's network link is rarely the limit; its flash and CPU are. A conservative figure for estimates.
LINUX_LINK_RATE_BYTES_PER_S: Final = 5_000_000


class LinuxSshDriver:
    """A Linux charger over SSH: images staged as files, installed by the charger's own updater."""

    capabilities: Final = Capabilities(
        transport="ssh",
        install_methods=frozenset(updaters()),
        resume=Resume.STAGED_PREFIX,
        verification=Verification.SHA256_READBACK,
        trial_boot=True,
        revert=Revert.SLOT_FALLBACK,
        health_check=True,
        link_rate_bytes_per_s=LINUX_LINK_RATE_BYTES_PER_S,
    )

    def __init__(
        self,
        connect: Callable[[], RemoteShell],
        staging_dir: str = STAGING_DIR,
        command_timeout_s: float = 120.0,
        reboot_timeout_s: float = 180.0,
        health_stable_s: float = 10.0,
        health_timeout_s: float = 120.0,
        poll_s: float = 1.0,
        vendor_update_command: str = VENDOR_UPDATE_COMMAND,
        profiles: ProfileLibrary | None = None,
        profile_name: str | None = None,
    ) -> None:
        self._connect = connect
        self.updaters = updaters(vendor_update_command)
        self.default_staging_dir = staging_dir
        self.command_timeout_s = command_timeout_s
        self.reboot_timeout_s = reboot_timeout_s
        self.health_stable_s = health_stable_s
        self.health_timeout_s = health_timeout_s
        self.poll_s = poll_s
        self._profiles = profiles
        self._profile_name = profile_name
        self._profile: Profile | None = None
        self._session: RemoteShell | None = None
        self._reported_staging_dir: str | None = None  # "" once the charger said it names none

    # -- plumbing ---------------------------------------------------------------

    def _ssh(self) -> RemoteShell:
        if self._session is None:
            session = self._connect()
            session.connect()
            self._session = session
        return self._session

    def _drop(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    @staticmethod
    def _program(command: str) -> str:
        return command.split(maxsplit=1)[0]

    @staticmethod
    def _reason(stdout: bytes, stderr: bytes) -> str:
        """The updater's own reason, wherever it printed it (RAUC: stdout's LastError; others: stderr)."""
        lines = []
        for raw in (stdout + b"\n" + stderr).decode("utf-8", "replace").splitlines():
            line = raw.strip()
            if not line or line[:1].isdigit():  # progress lines ("40% Verifying ...")
                continue
            logged = LOGFMT_LINE.search(line)  # Mender's logrus lines: only errors say why, and only their msg
            if logged is not None:
                if logged.group(1) in ("error", "fatal", "panic"):
                    lines.append(logged.group(2).replace('\\"', '"'))
                continue
            lines.append(line)
        telling = [line for line in lines if any(word in line.lower() for word in REASON_WORDS)]
        return " / ".join(dict.fromkeys(telling or lines[-3:]))[-600:]

    def _run(self, command: str, timeout_s: float | None = None, name: str | None = None) -> str:
        """Run ``command`` on the charger; a failure names ``name`` (default: its first word)."""
        try:
            result = self._ssh().run(command, timeout_s or self.command_timeout_s)
        except LinkLostError:
            self._drop()
            raise
        if result.exit_status != 0:
            program = name or self._program(command)
            raise DeviceRefusedError(
                f"`{program}` failed with status {result.exit_status}: {self._reason(result.stdout, result.stderr)}"
            )
        return result.text

    def _json(self, command: str) -> object:
        text = self._run(command)
        try:
            return parse_bounded(text.encode("utf-8", "surrogateescape"), MAX_HELPER_JSON_BYTES, 16)
        except ValueError as exc:  # JsonShapeError included: too big, too deep, duplicate keys
            raise DeviceRefusedError(f"`{self._program(command)}` did not answer with JSON: {text[:200]!r}") from exc

    def _helper_identity(self) -> HelperIdentity:
        return parse_answer(HelperIdentity, "charger-identity", self._json("charger-identity --json"))

    def close(self) -> None:
        self._drop()

    @property
    def staging_dir(self) -> str:
        """Where images are staged: the profile's choice, else where the charger says, else the setting.

        A charger that ships the helpers may name its own staging directory (``staging_dir`` in
        ``charger-identity --json``): several chargers on one host, as the simulator runs them,
        must not share one. Asks the charger (blocking) the first time: call from a worker thread.
        """
        profile = self.profile()
        if profile.staging_dir:
            return profile.staging_dir
        if profile.updater == "helpers":
            if self._reported_staging_dir is None:
                self._reported_staging_dir = reported_staging_dir(self._helper_identity().staging_dir)
            if self._reported_staging_dir:
                return self._reported_staging_dir
        return self.default_staging_dir

    def staged_path(self, sha256: str) -> str:
        return f"{self.staging_dir}/{sha256}.img"

    # -- profile ------------------------------------------------------------------------

    def profile(self) -> Profile:
        """The charger's profile: the named one, or the highest-priority one whose match command succeeds."""
        if self._profile is not None:
            return self._profile
        library = self._profiles if self._profiles is not None else load_profiles()
        if self._profile_name is not None:
            self._profile = library.get(self._profile_name)
            return self._profile
        candidates = library.by_priority()
        probe = "; ".join(f"if ({p.match}) >/dev/null 2>&1; then echo {shlex.quote(p.name)}; fi" for p in candidates)
        matched = self._run(probe or "true", name="profile match").split()
        for candidate in candidates:
            if candidate.name in matched:
                self._profile = candidate
                return candidate
        raise DeviceRefusedError(
            "no charger profile fits this charger (no RAUC, no fieldkit helpers found)",
            "add a profile for it in fieldkit's config directory (profiles/*.toml; see README, Charger profiles); "
            "a login user that is not root may need the profile's `privileged` (e.g. sudo -n)",
        )

    # -- the driver contract ------------------------------------------------------

    async def identify(self) -> ChargerIdentity:
        return await asyncio.to_thread(self._identify)

    def _identify(self) -> ChargerIdentity:
        identity = self._identify_components()
        return dataclasses.replace(identity, **self._staging_facts(), boot_id=self._boot_id())

    def _identify_components(self) -> ChargerIdentity:
        """Identity, versions and slots only: what the health poll, commit and rollback ask again and again.

        Staging space and boot id (two more round trips) are read by ``_identify`` for preflight.
        """
        profile = self.profile()
        if profile.updater == "helpers":
            identity = self._identify_helpers()
        elif profile.updater in ("swupdate", "mender"):
            identity = self._identify_from_boot_environment(profile)
        else:
            identity = self._identify_rauc(profile)
        return dataclasses.replace(identity, profile=profile.name)

    def _identify_helpers(self) -> ChargerIdentity:
        raw = self._helper_identity()
        return ChargerIdentity(
            vendor=raw.vendor,
            model=raw.model,
            hardware_revision=raw.hardware_revision,
            serial=raw.serial,
            address=self._ssh().address,
            components={
                name: ComponentInfo(name, c.running_version, c.active_slot, c.state, c.pending_slot, c.install_method)
                for name, c in raw.components.items()
            },
            security_version_floor=raw.security_version_floor,
            transaction_active=raw.transaction_active,
            meter_wh=raw.meter_wh,
            connector_statuses=tuple(raw.connectors),
        )

    def _facts(self, profile: Profile) -> dict[str, tuple[str, FactSource]]:
        """Each fact's value, and whether it was read from a file (a descriptor) or reported by a command."""
        script = fact_script(profile)
        found = profile.values_and_origins(script.parse(self._run(script.command, name="identity facts")))
        return {
            name: (value, FactSource.DESCRIPTOR if origin.file is not None else FactSource.DEVICE)
            for name, (value, origin) in found.items()
        }

    def _rauc_status(self) -> rauc.RaucStatus:
        return rauc.RaucStatus.parse(self._run(rauc.STATUS_COMMAND, name="rauc status"))

    def _swupdate_status(self) -> swupdate.SwupdateStatus:
        profile = self.profile()
        return swupdate.SwupdateStatus.parse(
            profile.swupdate,
            self._run(swupdate.env_command(profile.root_prefix), name="fw_printenv"),
            profile.root_prefix,
        )

    def _mender_status(self) -> mender.MenderStatus:
        profile = self.profile()
        return mender.MenderStatus.parse(
            profile.root_prefix + profile.mender.command,
            self._run(mender.status_command(profile.root_prefix), name="fw_printenv"),
        )

    def _identify_from_boot_environment(self, profile: Profile) -> ChargerIdentity:
        """SWUpdate and Mender: the running version from the profile's facts, slots from U-Boot's environment."""
        facts = self._facts(profile)
        status = self._mender_status() if profile.updater == "mender" else self._swupdate_status()
        component = ComponentInfo(
            profile.component,
            facts["version"][0] if "version" in facts else None,
            status.booted,
            "pending" if status.trial_running else "committed",
            status.pending,
            profile.updater,
        )
        return self._identity_from_facts(facts, {profile.component: component}, "")

    def _identity_from_facts(
        self, read: dict[str, tuple[str, FactSource]], components: dict[str, ComponentInfo], fallback_model: str
    ) -> ChargerIdentity:
        facts = {name: value for name, (value, _) in read.items()}
        sources = {IDENTITY_FIELD_OF_FACT.get(name, name): source for name, (_, source) in read.items()}
        if not facts.get("model") and fallback_model:
            sources["model"] = FactSource.DEVICE  # the updater's compatible string
        floor = facts.get("security_version_floor")
        return ChargerIdentity(
            vendor=facts.get("vendor", ""),
            model=facts.get("model") or fallback_model,
            hardware_revision=facts.get("hardware_revision", ""),
            serial=facts.get("serial", ""),
            address=self._ssh().address,
            components=components,
            security_version_floor=int(floor) if floor is not None and floor.isdigit() else None,
            transaction_active=transaction_state(facts.get("transaction")),
            connector_statuses=tuple(c.strip() for c in facts.get("connectors", "").split(",") if c.strip()),
            fact_sources={name: source for name, source in sources.items() if source != FactSource.DEVICE},
        )

    def _identify_rauc(self, profile: Profile) -> ChargerIdentity:
        facts = self._facts(profile)
        status = self._rauc_status()
        components: dict[str, ComponentInfo] = {}
        for slot_class in dict.fromkeys(s.slot_class for s in status.slots if s.bootname):
            booted = status.booted_slot(slot_class)
            pending = status.pending(slot_class)
            version = booted.bundle_version if booted is not None else None
            if slot_class == profile.component:
                version = facts["version"][0] if "version" in facts else version  # the system's own word first
            components[slot_class] = ComponentInfo(
                slot_class,
                version,
                booted.bootname or "?" if booted is not None else "?",
                "committed",  # RAUC cannot tell a trial boot from a committed one; the job journal can
                pending.bootname if pending is not None else None,
                "rauc",
                pending.bundle_version if pending is not None else None,
            )
        return self._identity_from_facts(facts, components, status.compatible)

    def _staging_facts(self) -> StagingFacts:
        """Can the login user stage images, and how much room is there? Checked before anything is sent."""
        directory = shlex.quote(self.staging_dir)
        answer = self._ssh().run(
            f"mkdir -p {directory} 2>&1 && test -w {directory} && df -Pk {directory} | tail -n 1",
            self.command_timeout_s,
        )
        if answer.exit_status != 0:
            user = self._ssh().login_user
            return {
                "staging_dir": self.staging_dir,
                "staging_problem": f"{self.staging_dir} cannot be written by {user} on the charger",
                "staging_free_bytes": None,
            }
        fields = answer.text.split()
        free = int(fields[3]) * 1024 if len(fields) >= 4 and fields[3].isdigit() else None
        return {"staging_dir": self.staging_dir, "staging_free_bytes": free, "staging_problem": None}

    def _boot_id(self) -> str | None:
        profile = self.profile()
        if not profile.boot_id:
            return None
        try:
            text = self._run(profile.boot_id, name="boot id")
        except DeviceRefusedError:
            return None
        if profile.boot_id_pattern:
            found = re.search(profile.boot_id_pattern, text)
            return found.group(1) if found else None
        return text.strip() or None

    async def transfer(self, component: str, payload: PayloadSource, on_progress: ProgressCallback | None) -> int:
        return await asyncio.to_thread(self._transfer, payload, on_progress)

    def _transfer(self, payload: PayloadSource, on_progress: ProgressCallback | None) -> int:
        total = payload.size_bytes
        remote = self.staged_path(payload.sha256)
        self._run(f"mkdir -p {shlex.quote(self.staging_dir)}")
        offset = self._verified_prefix(payload, remote, total)
        if offset == total:
            if on_progress is not None:
                on_progress(total)
            return 0
        try:
            self._ssh().upload(payload.path, remote, offset, on_progress, payload.offset, total)
        except LinkLostError:
            self._drop()
            raise
        return total - offset

    def _verified_prefix(self, payload: PayloadSource, remote: str, total: int) -> int:
        """How much of the staged copy can be kept: the longest candidate prefix that hashes right, else 0.

        Candidates: the whole staged copy, then (for an upload spread over
        several channels, which may leave holes near its end) the copy less
        the striped upload's hole bound, cut to a block boundary.
        """
        size = self._ssh().remote_size(remote)
        if not size or size > total:
            return 0
        candidates = [size]
        streams = self._ssh().upload_streams  # what the upload that left this copy used
        back = hole_bound_bytes(streams)
        if streams > 1 and size > back:
            candidates.append((size - back) // BLOCK_BYTES * BLOCK_BYTES)
        for length in candidates:
            if length <= 0:
                continue
            command = f"head -c {length} {shlex.quote(remote)} | {remote_sha256()}"
            answer = self._run(command, name="sha256").split()
            if answer and hmac.compare_digest(answer[0], sha256_file(payload.path, payload.offset, length)[1]):
                return length
        return 0

    async def verify(self, component: str, payload: PayloadSource) -> str:
        staged = await asyncio.to_thread(self._verify, payload.sha256)
        return f"{Verification.SHA256_READBACK.value} ({staged})"

    def _verify(self, sha256: str) -> str:
        staged = self.staged_path(sha256)
        answer = self._run(remote_sha256(shlex.quote(staged)), name="sha256").split()
        if not answer or not hmac.compare_digest(answer[0], sha256):
            raise DeviceRefusedError(
                "the staged image on the charger does not match its SHA-256",
                "the copy was damaged on the way; it will be transferred again",
            )
        return staged

    def _updater(self, install_method: str) -> Updater:
        updater = self.updaters.get(install_method)
        if updater is None:
            raise DeviceRefusedError(
                f"a Linux charger cannot install with {install_method!r}",
                f"install methods over SSH: {', '.join(self.updaters)}",
            )
        return updater

    async def installed(self, component: str, version: str) -> bool | None:
        info = (await self.identify()).components.get(component)
        if info is None or info.pending_slot is None:
            return False
        # An updater that does not name the version it installed (None) installed what this job sent:
        # fieldkit refuses a second job on a charger with an unfinished one.
        return info.pending_version in (None, version)

    async def activate(self, component: str, sha256: str, install_method: str) -> None:
        await asyncio.to_thread(self._activate, sha256, install_method)

    def _activate(self, sha256: str, install_method: str) -> None:
        image = shlex.quote(self.staged_path(sha256))
        if install_method == "swupdate" and self.profile().updater == "swupdate":
            command = self._swupdate_status().install_command(image)  # into the copy that is not running
        elif install_method == "mender" and self.profile().updater == "mender":
            command = self._mender_status().install_command(image)  # Mender 3's or Mender 4's client
        else:
            command = self._updater(install_method).install.format(image=image)
        self._run(command, None, install_method)

    async def reboot(self) -> str | None:
        await asyncio.to_thread(self._reboot)
        return None  # the same system answers at the same address

    def _reboot(self) -> None:
        """Reboot and return once the charger is back: its boot id changed (or, without one, it answers again)."""
        before = self._boot_id()
        with contextlib.suppress(LinkLostError, DeviceRefusedError):  # a real charger drops the link while rebooting
            self._run(self.profile().reboot or "reboot", timeout_s=30)
        self._drop()
        deadline = time.monotonic() + self.reboot_timeout_s
        last = "no answer yet"
        while True:
            try:
                now = self._boot_id()
                if before is None or (now is not None and now != before):
                    return
                last = "still the system that was asked to reboot (same boot id)"
                self._drop()  # the old system, shutting down: ask a fresh connection next time
            except (HostUnreachableError, LinkLostError) as exc:
                last = exc.message
                self._drop()
            if time.monotonic() > deadline:
                raise LinkLostError(f"the charger did not come back within {self.reboot_timeout_s:.0f} s: {last}")
            time.sleep(self.poll_s)

    async def health(
        self, expected_versions: dict[str, str], baseline_meter_wh: int, on_poll: HealthCallback | None = None
    ) -> HealthReport:
        if self.profile().updater == "helpers":
            return await asyncio.to_thread(self._health_helpers, expected_versions, baseline_meter_wh, on_poll)
        return await asyncio.to_thread(self._health_profile, expected_versions, on_poll)

    def _health_profile(self, expected_versions: dict[str, str], on_poll: HealthCallback | None) -> HealthReport:
        """Healthy = the expected versions run, and the profile's health command passes for a whole stable window.

        While the charger boots, failing commands and old versions mean "not yet", until the timeout.
        """
        deadline = time.monotonic() + self.health_timeout_s
        stable_since: float | None = None
        last = HealthReport(False, "no status read yet")
        health_command = self.profile().health
        while time.monotonic() <= deadline:
            try:
                identity = self._identify_components()
                running = {n: c.version for n, c in identity.components.items()}
                wrong = {n: v for n, v in expected_versions.items() if running.get(n) != v}
                statuses = list(identity.connector_statuses)
                if wrong:
                    detail = f"running {versions_text(running)}, expected {versions_text(expected_versions)}"
                    last, stable_since = HealthReport(False, detail, statuses, running), None
                elif health_command is not None and self._ssh().run(health_command, self.command_timeout_s).exit_status:
                    last, stable_since = HealthReport(False, f"`{health_command}` reports the charger unhealthy",
                                                      statuses, running), None  # fmt: skip
                else:
                    stable_since = stable_since if stable_since is not None else time.monotonic()
                    stable_for_s = time.monotonic() - stable_since
                    detail = "expected versions running" + (f" and `{health_command}` passing" if health_command else
                                                            " (this profile has no health command)")  # fmt: skip
                    if stable_for_s >= self.health_stable_s:
                        return HealthReport(True, detail, statuses, running)
                    last = HealthReport(False, f"{detail}; stable {stable_for_s:.0f} of {self.health_stable_s:.0f} s",
                                        statuses, running)  # fmt: skip
                    if not health_pause(on_poll, last, min(self.poll_s, self.health_stable_s - stable_for_s)):
                        return health_cancelled(last)
                    continue
            except (TransportError, DeviceRefusedError) as exc:
                last, stable_since = HealthReport(False, f"charger not answering yet: {exc.message}"), None
                self._drop()
            if not health_pause(on_poll, last, self.poll_s):
                return health_cancelled(last)
        return HealthReport(
            False,
            f"not healthy within {self.health_timeout_s:.0f} s: {last.detail}",
            last.connector_statuses,
            last.running_versions,
        )

    def _health_helpers(
        self, expected_versions: dict[str, str], baseline_meter_wh: int, on_poll: HealthCallback | None
    ) -> HealthReport:
        """Healthy = expected versions running, connectors Available for a whole stable window, meter intact."""
        deadline = time.monotonic() + self.health_timeout_s
        stable_since: float | None = None
        last = HealthReport(False, "no status read yet")
        while time.monotonic() <= deadline:
            try:
                raw = parse_answer(HelperStatus, "charger-status", self._json("charger-status --json"))
            except (TransportError, DeviceRefusedError) as exc:
                # Still booting: a failing command means "not yet", until the timeout.
                last, stable_since = HealthReport(False, f"charger not answering: {exc.message}"), None
                self._drop()
                if not health_pause(on_poll, last, self.poll_s):
                    return health_cancelled(last)
                continue
            statuses = [c.status for c in raw.connectors]
            running = {n: c.running_version for n, c in raw.components.items()}
            meter = raw.meter_wh
            wrong = {n: v for n, v in expected_versions.items() if running.get(n) != v}
            if wrong:  # still booting, or the bootloader went back: "not yet" until the timeout says which
                detail = f"running {versions_text(running)}, expected {versions_text(expected_versions)}"
                last, stable_since = HealthReport(False, detail, statuses, running, meter), None
                if not health_pause(on_poll, last, self.poll_s):
                    return health_cancelled(last)
                continue
            if meter < baseline_meter_wh:
                return HealthReport(
                    False, f"meter register went back from {baseline_meter_wh} to {meter} Wh", statuses, running, meter
                )
            pause_s = self.poll_s
            shown = ", ".join(statuses) or "none reported"
            if all(s == "Available" for s in statuses):
                stable_since = stable_since if stable_since is not None else time.monotonic()
                stable_for_s = time.monotonic() - stable_since
                if stable_for_s >= self.health_stable_s:
                    return HealthReport(True, "connectors Available and stable", statuses, running, meter)
                # Look again when the window closes (no later than the next poll): a short window is not
                # stretched to a whole poll interval.
                pause_s = min(self.poll_s, self.health_stable_s - stable_for_s)
                detail = f"connectors {shown}; stable {stable_for_s:.0f} of {self.health_stable_s:.0f} s"
            else:
                stable_since = None
                detail = f"connectors {shown}; waiting for all to be Available"
            last = HealthReport(False, detail, statuses, running, meter)
            if not health_pause(on_poll, last, pause_s):
                return health_cancelled(last)
        return HealthReport(
            False,
            f"not healthy within {self.health_timeout_s:.0f} s: {last.detail}",
            last.connector_statuses,
            last.running_versions,
            last.meter_wh,
        )

    async def commit(self, install_methods: Mapping[str, str], expected_versions: Mapping[str, str]) -> None:
        await asyncio.to_thread(self._commit, install_methods, expected_versions)

    def _commit(self, install_methods: Mapping[str, str], expected_versions: Mapping[str, str]) -> None:
        # Ask first: after a crash between "commit" and its journal entry, some updaters
        # (mender-update) refuse a second commit, and there is nothing left to commit anyway.
        identity = self._identify_components()
        for method in dict.fromkeys(install_methods.values()):
            owned = [name for name, m in install_methods.items() if m == method]
            if self._decided_from_status(method):
                status = self._updater_status(method)
                for name in owned:
                    running = identity.components[name].version if name in identity.components else None
                    for command in _commit_plan(status, name, running, expected_versions[name]).commands:
                        self._run(command, name=_step_name(status, "commit"))
                continue
            if any(name in identity.components and identity.components[name].state == "pending" for name in owned):
                self._run(self._updater(method).commit)

    def _decided_from_status(self, method: str) -> bool:
        """Are this method's commit and rollback decided from the charger's own status (rauc, swupdate, mender)?"""
        return method == "rauc" or (method in ("swupdate", "mender") and self.profile().updater == method)

    def _updater_status(self, method: str) -> UpdaterStatus:
        if method == "rauc":
            return self._rauc_status()
        return self._mender_status() if method == "mender" else self._swupdate_status()

    async def discard(self, sha256s: Sequence[str]) -> None:
        await asyncio.to_thread(self._discard, sha256s)

    def _discard(self, sha256s: Sequence[str]) -> None:
        paths = " ".join(shlex.quote(self.staged_path(sha256)) for sha256 in sha256s)
        if paths:
            self._run(f"rm -f {paths}")

    async def rollback(
        self, install_methods: Mapping[str, str], previous_versions: Mapping[str, str | None] | None = None
    ) -> str:
        notes: list[str] = []
        reboot = False
        for method in dict.fromkeys(install_methods.values()):
            owned = [name for name, m in install_methods.items() if m == method]
            if self._decided_from_status(method):
                needs_reboot, note = await asyncio.to_thread(self._abandon, method, owned, previous_versions)
                reboot = reboot or needs_reboot
                notes.append(note)
            else:
                await asyncio.to_thread(self._run, self._updater(method).rollback)
                notes.append(f"{method}: rolled back")
                reboot = True
        if reboot:
            await self.reboot()
        return "; ".join(notes)

    def _abandon(
        self, method: str, components: list[str], previous: Mapping[str, str | None] | None
    ) -> tuple[bool, str]:
        identity = self._identify_components()
        status = self._updater_status(method)
        reboot, notes = False, []
        for name in components:
            info = identity.components.get(name)
            running = info.version if info is not None else None
            before = previous.get(name) if previous is not None else None
            # A trial runs when the job says the version changed, or the charger itself says so.
            trial = (before is not None and running is not None and running != before) or (
                info is not None and info.state == "pending"
            )
            plan = _abandon_plan(status, name, running, trial)
            if not plan.commands and previous is None:
                raise DeviceRefusedError(
                    f"nothing to roll back on {identity.serial or 'this charger'}: {plan.note}",
                    "rollback abandons an installed image that has not been committed; this charger has none",
                )
            for command in plan.commands:
                self._run(command, name=_step_name(status, "rollback"))
            reboot = reboot or plan.reboot
            notes.append(plan.note)
        return reboot, "; ".join(notes)


# What each updater's status is read into; its module decides commit and abandon from it.
UpdaterStatus = rauc.RaucStatus | swupdate.SwupdateStatus | mender.MenderStatus


def _commit_plan(status: UpdaterStatus, component: str, running: str | None, expected: str) -> rauc.Plan:
    if isinstance(status, rauc.RaucStatus):
        return rauc.commit_plan(status, component, running, expected)
    if isinstance(status, mender.MenderStatus):
        return mender.commit_plan(status, running, expected)
    return swupdate.commit_plan(status, running, expected)


def _abandon_plan(status: UpdaterStatus, component: str, running: str | None, trial: bool) -> rauc.Plan:
    if isinstance(status, rauc.RaucStatus):
        return rauc.abandon_plan(status, component, running, trial)
    if isinstance(status, mender.MenderStatus):
        return mender.abandon_plan(status, trial)
    return swupdate.abandon_plan(status, trial)


def _step_name(status: UpdaterStatus, verb: str) -> str:
    """How a failed command is named to the technician: the updater's own command, not a shell script."""
    if isinstance(status, rauc.RaucStatus):
        return "rauc status mark-good" if verb == "commit" else "rauc status"
    if isinstance(status, mender.MenderStatus):
        return status.verb(verb)
    return "fw_setenv"
