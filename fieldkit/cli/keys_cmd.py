"""`fieldkit keys ...`: signing keys for release engineers and trust-store admins."""

from __future__ import annotations

from pathlib import Path

import click

from fieldkit.bundles.roles import ROLES
from fieldkit.cli.common import EXISTING_FILE, console_out
from fieldkit.errors import UsageError

MAX_KEY_NAME_CHARS = 64


@click.group("keys")
def keys_group() -> None:
    """Create signing keys."""


@keys_group.command("generate")
@click.option("--name", required=True, help="File name stem: writes NAME.key and NAME.pub.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(ROLES),
    help="What the key is for; recorded in the key files.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the key files into.",
)
@click.option(
    "--algorithm",
    type=click.Choice(["ed25519", "ecdsa-p256-sha256"]),
    default="ed25519",
    show_default=True,
)
@click.option(
    "--passphrase-file",
    type=EXISTING_FILE,
    help="Encrypt the private key with the passphrase on this file's first line.",
)
@click.option(
    "--unencrypted",
    is_flag=True,
    help="Write the private key without encryption (tests, HSM import).",
)
def generate(
    name: str,
    role: str,
    out_dir: Path,
    algorithm: str,
    passphrase_file: Path | None,
    unencrypted: bool,
) -> None:
    """Generate a key pair: DIR/NAME.key (private, owner-only) and DIR/NAME.pub."""
    from fieldkit.bundles import keys

    if len(name) > MAX_KEY_NAME_CHARS:
        raise UsageError(
            f"--name is {len(name)} characters long", f"at most {MAX_KEY_NAME_CHARS}: it names the key files"
        )
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UsageError(f"--name {name!r} may hold only letters, digits, '-', '_' and '.'")
    if unencrypted and passphrase_file:
        raise UsageError("--unencrypted and --passphrase-file contradict each other", "pass only one")
    passphrase: bytes | None = None
    if not unencrypted:
        if passphrase_file:
            passphrase = keys.read_passphrase_file(passphrase_file)
        else:
            passphrase = click.prompt("Passphrase for the new key", hide_input=True, confirmation_prompt=True).encode(
                "utf-8"
            )
    private = keys.generate(algorithm)  # type: ignore[arg-type]
    key_path, pub_path = keys.write_key_pair(out_dir, name, private, keys.KeyMeta(name=name, role=role), passphrase)
    out = console_out()
    out.print(f"wrote {key_path} ({'encrypted' if passphrase else 'UNENCRYPTED'}) and {pub_path}")
    out.print(f"key id {keys.key_id(private.public_key())}  role {role}  algorithm {algorithm}")
