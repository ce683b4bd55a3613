"""Charger profiles: data that tells the Linux driver where a family of chargers keeps what it needs.

In the spirit of fwupd's quirk files. A profile is a TOML file: which
updater the charger runs, where identity and status facts come from (files
or commands, each with an optional pattern), how to reboot it and how to
tell that it did (its boot id), and optionally a health command. fieldkit
ships generic profiles (``fieldkit/drivers/profiles/*.toml``); vendors and
technicians add their own as ``profiles/*.toml`` in fieldkit's config
directory. A profile may ``extends`` another: its facts are tried first,
then the base's, and the fields it sets replace the base's.

The profile that fits a charger is the highest-priority one whose ``match``
command exits 0 there. A fact no source yields is unknown, never a default:
an unknown transaction state or anti-rollback floor must be confirmed by
the technician (see updates/preflight.py).
"""

from __future__ import annotations

import re
import secrets
import shlex
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fieldkit import config
from fieldkit.errors import ConfigError, UsageError
from fieldkit.fsutil import read_regular_file

FactName = Literal[
    "vendor", "model", "hardware_revision", "serial", "version", "transaction", "security_version_floor", "connectors"
]
MAX_PROFILE_BYTES: Final = 256 * 1024
FACT_OUTPUT_BYTES: Final = 4096  # what one fact source may print; identity files are short
TRANSACTION_ACTIVE: Final = frozenset({"active", "charging", "true", "1", "yes"})
TRANSACTION_IDLE: Final = frozenset({"idle", "none", "false", "0", "no"})


class FactSource(BaseModel):
    """One place a fact may come from: a file or a command, and the pattern that picks the value out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: FactName
    file: str | None = None
    command: str | None = None
    pattern: str | None = None  # a regular expression (multi-line) whose first group is the value

    @model_validator(mode="after")
    def _one_place(self) -> FactSource:
        if (self.file is None) == (self.command is None):
            raise ValueError(f"fact {self.name!r} needs exactly one of file or command")
        if self.pattern is not None:
            try:
                if re.compile(self.pattern).groups < 1:
                    raise ValueError(f"the pattern of fact {self.name!r} needs a group: (...)")
            except re.error as exc:
                raise ValueError(f"the pattern of fact {self.name!r} is not a regular expression: {exc}") from exc
        return self

    def shell(self) -> str:
        if self.file is not None:
            return f"cat {shlex.quote(self.file)}"
        assert self.command is not None
        return self.command

    def pick(self, output: str) -> str | None:
        if self.pattern is None:
            value = output.strip().strip("\0").strip()
        else:
            found = re.search(self.pattern, output, re.MULTILINE)
            value = found.group(1).strip() if found else ""
        return value or None


class SwupdateTable(BaseModel):
    """``[swupdate]``: where a dual-copy SWUpdate setup keeps its state (see swupdate.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slots: tuple[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,16}$")], Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,16}$")]
    ] = (
        "A",
        "B",
    )
    slot_var: str = Field("rootpart", pattern=r"^[A-Za-z0-9_]+$")
    trial_var: str = Field("upgrade_available", pattern=r"^[A-Za-z0-9_]+$")
    count_var: str = Field("bootcount", pattern=r"^[A-Za-z0-9_]+$")
    state_var: str = Field("ustate", pattern=r"^[A-Za-z0-9_]+$")
    select: str = "stable,copy{slot}"
    key: str = "/etc/swupdate/public.pem"


class MenderTable(BaseModel):
    """``[mender]``: which Mender client runs the standalone verbs (see mender.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Literal["mender", "mender-update"] = "mender"  # Mender 3 / Mender 4


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    summary: str = ""
    extends: str | None = None
    priority: int = 0
    match: str = Field(min_length=1)
    # "rauc": slots and versions from RAUC; "swupdate" and "mender": from the bootloader environment (see
    # [swupdate] and [mender]); "helpers": everything from charger-identity/charger-status.
    updater: Literal["rauc", "swupdate", "mender", "helpers"] | None = None
    swupdate: SwupdateTable = SwupdateTable()
    mender: MenderTable = MenderTable()
    component: str = "rootfs"  # the component the booted system's version belongs to
    staging_dir: str | None = None  # default: the ssh_staging_dir setting
    # For a login user that is not root (dropbear chargers often log in as a service user): the command
    # put in front of each root-only program of the updater (swupdate, fw_printenv, fw_setenv, mender),
    # e.g. "sudo -n", so the charger's sudoers can name exactly those programs. RAUC needs none: its
    # D-Bus service does the root work.
    privileged: str | None = Field(None, pattern=r"^[A-Za-z0-9_./=-]+( [A-Za-z0-9_./=-]+)*$")
    reboot: str | None = None
    boot_id: str | None = None
    boot_id_pattern: str | None = None
    health: str | None = None  # exits 0 while the charger's application is healthy
    facts: tuple[FactSource, ...] = ()
    source: str = ""  # where it was read from, for messages

    @property
    def root_prefix(self) -> str:
        """What goes in front of a root-only program: the ``privileged`` command and a space, or nothing."""
        return f"{self.privileged} " if self.privileged else ""

    def values(self, outputs: dict[int, str | None]) -> dict[str, str]:
        """The first value each fact's sources yield, from the outputs of ``fact_script``."""
        return {name: value for name, (value, _) in self.values_and_origins(outputs).items()}

    def values_and_origins(self, outputs: dict[int, str | None]) -> dict[str, tuple[str, FactSource]]:
        """Each fact's value and the source that gave it (its file or its command)."""
        found: dict[str, tuple[str, FactSource]] = {}
        for index, source in enumerate(self.facts):
            if source.name in found:
                continue
            output = outputs.get(index)
            value = source.pick(output) if output is not None else None
            if value is not None:
                found[source.name] = (value, source)
        return found


@dataclass(frozen=True)
class FactScript:
    """One shell command that reads every fact source in one round trip."""

    command: str
    marker: str
    count: int

    def parse(self, output: str) -> dict[int, str | None]:
        """Index -> what that source printed, or None where it failed (missing file, command error)."""
        results: dict[int, str | None] = {}
        for part in output.split(f"\n{self.marker} ")[1:]:
            head, _, body = part.partition("\n")
            index, _, status = head.partition(" ")
            if index.isdigit() and int(index) < self.count:
                results[int(index)] = body if status == "0" else None
        return results


def fact_script(profile: Profile) -> FactScript:
    marker = "@@fieldkit-" + secrets.token_hex(6)
    parts = []
    for index, source in enumerate(profile.facts):
        # POSIX sh (BusyBox ash, dash): the status rides behind the output, then each is printed cut short.
        parts.append(
            f"__o=$( ({source.shell()}) 2>/dev/null; printf '\\n@%s' $? ); "
            f"printf '\\n{marker} {index} %s\\n' \"${{__o##*@}}\"; "
            f"printf '%s' \"${{__o%@*}}\" | head -c {FACT_OUTPUT_BYTES}"
        )
    return FactScript("; ".join(parts) + "; echo", marker, len(profile.facts))


@dataclass
class ProfileLibrary:
    profiles: list[Profile] = field(default_factory=list)

    def by_priority(self) -> list[Profile]:
        return sorted(self.profiles, key=lambda p: (-p.priority, p.name))

    def get(self, name: str) -> Profile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise ConfigError(
            f"no charger profile named {name!r}", f"profiles: {', '.join(p.name for p in self.by_priority())}"
        )


def user_profiles_dir() -> Path:
    return config.config_path().parent / "profiles"


def _parse(text: str, source: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"charger profile {source} is not valid TOML: {exc}", "fix or remove that file") from exc


def _resolve(raw: dict[str, dict[str, object]], name: str, seen: tuple[str, ...] = ()) -> dict[str, object]:
    if name in seen:
        raise ConfigError(f"charger profiles extend each other in a circle: {' -> '.join((*seen, name))}")
    entry = dict(raw[name])
    base_name = entry.get("extends")
    if not isinstance(base_name, str):
        return entry
    if base_name not in raw:
        raise ConfigError(f"charger profile {name!r} extends {base_name!r}, which does not exist")
    base = _resolve(raw, base_name, (*seen, name))
    own_facts = entry.get("facts", [])
    base_facts = base.get("facts", [])
    merged = {**base, **entry}
    merged["facts"] = [
        *(own_facts if isinstance(own_facts, list) else []),
        *(base_facts if isinstance(base_facts, list) else []),
    ]
    merged.setdefault("priority", base.get("priority", 0))
    return merged


def load_profiles(extra_dir: Path | None = None) -> ProfileLibrary:
    """The shipped profiles, then the user's (a user profile of the same name replaces a shipped one)."""
    raw: dict[str, dict[str, object]] = {}
    shipped = resources.files("fieldkit.drivers").joinpath("profiles")
    for item in sorted(shipped.iterdir(), key=lambda i: i.name):
        if item.name.endswith(".toml"):
            data = _parse(item.read_text(encoding="utf-8"), f"(shipped) {item.name}")
            raw[str(data.get("name", item.name))] = {**data, "source": f"shipped {item.name}"}
    directory = extra_dir if extra_dir is not None else user_profiles_dir()
    if directory.is_dir():
        for path in sorted(directory.glob("*.toml")):
            try:
                text = read_regular_file(path, MAX_PROFILE_BYTES).decode("utf-8")
            except (OSError, UnicodeDecodeError, UsageError) as exc:
                raise ConfigError(f"cannot read charger profile {path}: {exc}") from exc
            data = _parse(text, str(path))
            raw[str(data.get("name", path.stem))] = {**data, "source": str(path)}
    profiles = []
    for name, entry in raw.items():
        try:
            profiles.append(Profile.model_validate(_resolve(raw, name)))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ConfigError(
                f"charger profile {entry.get('source')}: {where}: {error['msg']}", "fix or remove that file"
            ) from exc
    return ProfileLibrary(profiles)


def transaction_state(value: str | None) -> bool | None:
    """A transaction fact as True (a vehicle charging), False (none) or None (unknown)."""
    if value is None:
        return None
    word = value.strip().lower()
    if word in TRANSACTION_ACTIVE:
        return True
    if word in TRANSACTION_IDLE:
        return False
    return None
