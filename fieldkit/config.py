"""Settings and limits.

Settings live in ``config.toml`` under the user's config directory
(platformdirs). ``FIELDKIT_HOME`` points everything (config, data, state) at
one directory instead: tests, portable installs and demos use it.

Limits carry their unit in their name. Defaults are generous enough for real
charger firmware (Linux root filesystems of a few hundred MiB) and tight
enough that a hostile file cannot exhaust a laptop.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Final

from fieldkit.errors import ConfigError, UsageError
from fieldkit.fsutil import read_regular_file

APP_NAME: Final = "fieldkit"
HOME_ENV: Final = "FIELDKIT_HOME"
MAX_UPLOAD_STREAMS: Final = 16
MAX_SETTINGS_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Upper bounds applied to everything read from outside."""

    # ZIP without ZIP64: every offset and size must fit 32 bits.
    max_bundle_bytes: int = 0xFFFF_FFFF
    max_members: int = 64
    max_member_name_bytes: int = 128
    max_manifest_bytes: int = 1024 * 1024
    max_signatures_bytes: int = 256 * 1024
    max_signatures: int = 16
    max_certificate_chain: int = 4
    max_json_depth: int = 32
    max_trust_store_bytes: int = 4 * 1024 * 1024
    read_chunk_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything a user may set in ``config.toml``."""

    limits: Limits = Limits()
    # A bundle created up to this far in the future of "now" is still accepted:
    # laptop clocks drift and get set to the wrong time zone.
    clock_skew_tolerance_s: int = 3600
    backoffice_url: str = ""
    # When true, an update needs a signed work order naming the charger (or a typed override).
    require_work_order: bool = False
    # Health after an update: connectors Available for this long, within this time.
    health_stable_s: float = 10.0
    health_timeout_s: float = 180.0
    # Where Linux chargers stage images (on the charger; must survive a reboot).
    ssh_staging_dir: str = "/var/tmp/fieldkit-staging"  # noqa: S108 - a path on the charger, see drivers/linux_ssh.py
    # The vendor updater for components whose install method is "script" (on the charger):
    # called as `COMMAND install FILE`, `COMMAND commit`, `COMMAND rollback`.
    vendor_update_command: str = "charger-update"
    # SFTP channels an upload may spread over when the charger grants small channel windows (dropbear).
    ssh_upload_streams: int = 4


def home_dir() -> Path | None:
    """The ``FIELDKIT_HOME`` override, if set."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Where fieldkit keeps its state (trust store, clock, journals)."""
    home = home_dir()
    if home is not None:
        return home / "data"
    import platformdirs  # deferred: keeps `import fieldkit.config` light

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_path() -> Path:
    home = home_dir()
    if home is not None:
        return home / "config.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def default_trust_store_path() -> Path:
    return data_dir() / "trust-store.json"


def load_settings(path: Path | None = None) -> Settings:
    """Read settings, falling back to defaults for anything not given."""
    path = path or config_path()
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(read_regular_file(path, MAX_SETTINGS_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, UsageError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    settings = Settings()
    limits_raw = raw.pop("limits", {})
    if not isinstance(limits_raw, dict):
        raise ConfigError(f"{path}: [limits] must be a table")
    lowered = _positive_ints(path, "limits", limits_raw, Limits)
    for key, value in lowered.items():
        ceiling = getattr(Limits(), key)
        if value > ceiling:
            raise ConfigError(
                f"{path}: limits.{key} = {value} is above the format's limit of {ceiling}", "limits can only be lowered"
            )
    limits = replace(settings.limits, **lowered)
    top: dict[str, object] = {}
    for key, value in raw.items():
        if key in ("clock_skew_tolerance_s", "ssh_upload_streams"):
            number = _positive_ints(path, "", {key: value}, Settings)[key]
            if key == "ssh_upload_streams" and number > MAX_UPLOAD_STREAMS:
                raise ConfigError(f"{path}: ssh_upload_streams must be at most {MAX_UPLOAD_STREAMS}")
            top[key] = number
        elif key in ("health_stable_s", "health_timeout_s"):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{path}: {key} must be a positive number of seconds")
            top[key] = float(value)
        elif key == "require_work_order":
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: require_work_order must be true or false")
            top[key] = value
        elif key in ("backoffice_url", "ssh_staging_dir", "vendor_update_command"):
            if not isinstance(value, str):
                raise ConfigError(f"{path}: {key} must be a string")
            if key == "ssh_staging_dir" and (not value.startswith("/") or "'" in value or " " in value):
                raise ConfigError(f"{path}: ssh_staging_dir must be an absolute path without spaces or quotes")
            if key == "vendor_update_command" and not re.fullmatch(r"[A-Za-z0-9_./-]+", value):
                raise ConfigError(
                    f"{path}: vendor_update_command must be a command name or path (letters, digits, _ . / -)"
                )
            top[key] = value
        else:
            raise ConfigError(f"{path}: unknown setting {key!r}")
    return replace(settings, limits=limits, **top)  # type: ignore[arg-type]


def _positive_ints(path: Path, table: str, values: dict[str, object], owner: type) -> dict[str, int]:
    known = {f.name for f in fields(owner)}
    out: dict[str, int] = {}
    for key, value in values.items():
        where = f"{table}.{key}" if table else key
        if key not in known:
            raise ConfigError(f"{path}: unknown setting {where!r}")
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{path}: {where} must be a positive whole number")
        out[key] = value
    return out
