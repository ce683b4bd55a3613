"""The laptop's identity: its Ed25519 key and the technician using it.

The key is created once, by `fieldkit identity init`, and kept encrypted with a
passphrase. The laptop id is derived from the key ("laptop-" + the first 16 hex
digits of its key id), so it cannot drift away from the key that signs.
The passphrase comes from --passphrase-file, from the file named by
FIELDKIT_PASSPHRASE_FILE, or from a prompt on a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import ValidationError

from fieldkit import config
from fieldkit.audit.entry import Technician, laptop_id_for
from fieldkit.errors import FieldkitError, KeyFileError, UsageError
from fieldkit.safejson import load_json_file

PASSPHRASE_ENV: Final = "FIELDKIT_PASSPHRASE_FILE"  # noqa: S105 - the name of a variable, not a secret
MAX_PROFILE_BYTES: Final = 64 * 1024
MAX_SITE_CHARS: Final = 128  # as an audit entry holds it


class IdentityError(FieldkitError):
    exit_code = 5
    default_hint = "create the laptop identity with `fieldkit identity init`"


def identity_dir() -> Path:
    return config.data_dir() / "identity"


@dataclass(frozen=True)
class Profile:
    laptop_id: str
    technician: Technician
    site: str | None
    public_key_pem: str
    created_at: str

    def public_key(self) -> ed25519.Ed25519PublicKey:
        key = serialization.load_pem_public_key(self.public_key_pem.encode("ascii"))
        assert isinstance(key, ed25519.Ed25519PublicKey)
        return key


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def init_identity(
    technician_id: str, name: str, site: str | None, passphrase: bytes, directory: Path | None = None
) -> Profile:
    """Create the laptop key if there is none; (re)write the technician profile."""
    try:  # checked before anything is written: every audit entry carries these
        technician = Technician(id=technician_id, name=name)
    except ValidationError as exc:
        where = {"id": "--technician-id", "name": "--name"}.get(str(exc.errors()[0]["loc"][0]), "technician")
        raise UsageError(f"{where}: {exc.errors()[0]['msg']}", "give the technician's id and name as text") from exc
    if site is not None and not 1 <= len(site) <= MAX_SITE_CHARS:
        raise UsageError(f"--site: 1 to {MAX_SITE_CHARS} characters", "give the site's name")
    directory = directory or identity_dir()
    key_path = directory / "laptop.key"
    if key_path.exists():
        public = load_profile(directory).public_key()
    else:
        if len(passphrase) < 8:
            raise IdentityError("the identity passphrase is shorter than 8 characters", "choose a longer one")
        private = ed25519.Ed25519PrivateKey.generate()
        encrypted = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        _write_private(key_path, encrypted)
        public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    profile = Profile(
        laptop_id=laptop_id_for(public),
        technician=technician,
        site=site,
        public_key_pem=pem,
        created_at=dt.datetime.now(dt.UTC).isoformat(),
    )
    document = {
        "laptop_id": profile.laptop_id,
        "technician": profile.technician.model_dump(),
        "site": site,
        "public_key_pem": pem,
        "created_at": profile.created_at,
    }
    _write_private(directory / "profile.json", json.dumps(document, indent=2).encode())
    (directory / "laptop.pub").write_text(pem)
    return profile


def load_profile(directory: Path | None = None) -> Profile:
    directory = directory or identity_dir()
    try:
        raw = load_json_file(directory / "profile.json", MAX_PROFILE_BYTES, 4)
        if not isinstance(raw, dict):
            raise ValueError("profile.json is not a JSON object")
        return Profile(
            laptop_id=raw["laptop_id"],
            technician=Technician.model_validate(raw["technician"]),
            site=raw.get("site"),
            public_key_pem=raw["public_key_pem"],
            created_at=raw["created_at"],
        )
    except FileNotFoundError as exc:
        raise IdentityError("this laptop has no fieldkit identity yet") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JsonShapeError and ValidationError are ValueErrors
        raise IdentityError(
            f"the identity profile in {directory} is damaged: {exc}",
            "restore it from backup or run `fieldkit identity init` again",
        ) from exc


def passphrase_from_environment() -> bytes | None:
    name = os.environ.get(PASSPHRASE_ENV, "").strip()
    if not name:
        return None
    from fieldkit.bundles.keys import read_passphrase_file

    return read_passphrase_file(Path(name))


def unlock(passphrase: bytes | Callable[[], bytes], directory: Path | None = None) -> ed25519.Ed25519PrivateKey:
    """Decrypt the laptop key; ``passphrase`` may be a callable asked only when needed."""
    directory = directory or identity_dir()
    key_path = directory / "laptop.key"
    try:
        data = key_path.read_bytes()
    except FileNotFoundError as exc:
        raise IdentityError("this laptop has no fieldkit identity yet") from exc
    secret = passphrase() if callable(passphrase) else passphrase
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            "cannot unlock the laptop key: wrong passphrase",
            f"check the passphrase (or the file named by {PASSPHRASE_ENV})",
        ) from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise IdentityError("the laptop key is not an Ed25519 key")
    return key
