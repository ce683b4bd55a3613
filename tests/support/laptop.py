"""A laptop's settings for tests: health timings short enough to wait for, staging under the test's directory."""

from __future__ import annotations

from pathlib import Path


def write_laptop_config(home: Path, staging: Path, health_stable_s: float, health_timeout_s: float) -> None:
    (home / "config.toml").write_text(
        f'health_stable_s = {health_stable_s}\nhealth_timeout_s = {health_timeout_s}\nssh_staging_dir = "{staging}"\n'
    )
