from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fieldkit import config
from fieldkit.bundles import keys
from fieldkit.errors import ConfigError, KeyFileError, UsageError


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256-sha256"])
def test_encrypted_key_round_trip_and_owner_only(tmp_path: Path, algorithm: keys.Algorithm) -> None:
    private = keys.generate(algorithm)
    key_path, pub_path = keys.write_key_pair(tmp_path, "k", private, keys.KeyMeta("k", "release"), b"pw")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    loaded, meta = keys.load_private_key(key_path, b"pw")
    public, pub_meta = keys.load_public_key(pub_path)
    assert keys.key_id(loaded.public_key()) == keys.key_id(public)
    assert meta.role == pub_meta.role == "release"
    assert keys.verify(public, keys.sign(loaded, b"m"), b"m")
    assert not keys.verify(public, keys.sign(loaded, b"m"), b"n")


def test_wrong_or_missing_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    key_path, _ = keys.write_key_pair(tmp_path, "k", keys.generate(), keys.KeyMeta(), b"right")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        keys.load_private_key(key_path, b"wrong")
    with pytest.raises(KeyFileError, match="is encrypted"):
        keys.load_private_key(key_path, None)


def test_key_files_are_never_overwritten(tmp_path: Path) -> None:
    keys.write_key_pair(tmp_path, "k", keys.generate(), keys.KeyMeta(), None)
    with pytest.raises(UsageError, match="already exists"):
        keys.write_key_pair(tmp_path, "k", keys.generate(), keys.KeyMeta(), None)


def test_settings_file_overrides_limits_and_rejects_nonsense(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("clock_skew_tolerance_s = 60\n[limits]\nmax_members = 8\n")
    settings = config.load_settings(path)
    assert settings.clock_skew_tolerance_s == 60
    assert settings.limits.max_members == 8
    for text, match in (
        ("[limits]\nmax_members = -1\n", "positive"),
        ("colour = 1\n", "unknown"),
        ("x = ", "cannot"),
        ("[limits]\nmax_members = 100000\n", "above the format"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=match):
            config.load_settings(path)


def test_fieldkit_home_redirects_all_state(fieldkit_home: Path) -> None:
    assert config.data_dir() == fieldkit_home / "data"
    assert config.config_path() == fieldkit_home / "config.toml"
