"""The bundle manifest: what a bundle contains and which chargers it is for.

Parsed only after its exact bytes have been authenticated (see verify.py).
The schema refuses unknown fields at every level: a field fieldkit does not
understand could be one a charger would act on.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fieldkit.bundles.container import PAYLOAD_NAME_RE
from fieldkit.bundles.semver import Version, is_semver
from fieldkit.domain import Transport
from fieldkit.errors import BundleRejectedError
from fieldkit.safejson import STRICT, Timestamp, first_validation_error

SCHEMA: Final = "fieldkit-bundle"
SCHEMA_VERSION: Final = 2  # what fieldkit writes; it reads 1 and 2
READABLE_SCHEMA_VERSIONS: Final = (1, 2)
InstallMethod = Literal["rauc", "swupdate", "mender", "script", "mcumgr-smp", "dfu", "uboot-ymodem"]
INSTALL_METHODS: Final = (
    "rauc",
    "swupdate",
    "mender",
    "script",
    "mcumgr-smp",
    "dfu",
    "uboot-ymodem",
)
# The link each method runs over (the drivers' transports). A version 1 bundle names one method per
# component; it is read as that method over its link.
TRANSPORT_OF_METHOD: Final[dict[str, Transport]] = {
    "rauc": "ssh",
    "swupdate": "ssh",
    "mender": "ssh",
    "script": "ssh",
    "mcumgr-smp": "serial",
    "dfu": "usb",
    "uboot-ymodem": "serial",
}
_IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CHECK: Final = "manifest"


class _Strict(BaseModel):
    model_config = STRICT


def _semver(value: str) -> str:
    if not is_semver(value):
        raise ValueError(f"{value!r} is not a semantic version such as 2.4.1")
    return value


class Compatibility(_Strict):
    """One row of the compatibility matrix: a model and its hardware revisions."""

    model: str = Field(min_length=1, max_length=64)
    hardware_revisions: list[str] = Field(min_length=1, max_length=64)
    min_installed_version: str | None = None

    _check_min = field_validator("min_installed_version")(lambda v: _semver(v) if v is not None else None)


class OcppSignature(_Strict):
    """The OEM's own signature over a payload, as an OCPP charger checks it.

    ``signature`` is base64 of an RSA-PSS or ECDSA signature with SHA-256 over
    the payload file; ``signing_certificate`` is PEM, leaf first, optionally
    followed by intermediates (OCPP 2.0.1 SignedUpdateFirmware).
    """

    signature: str = Field(min_length=1, max_length=2048)
    signing_certificate: str = Field(min_length=1, max_length=32768)


class Component(_Strict):
    """What a component *is* (payload, target, version), and the ways it may be installed.

    ``install`` (format 2) maps each transport to the methods acceptable over it, preferred first, so a
    charger that can no longer be reached one way (a bricked Linux system) can be recovered another (its
    bootloader's console). Format 1 named one ``install_method``; ``ways`` reads both alike.
    """

    name: str = Field(pattern=_IDENTIFIER)
    target: str = Field(pattern=_IDENTIFIER)
    install_method: InstallMethod | None = None  # format 1 only
    install: dict[Transport, list[InstallMethod]] | None = None  # format 2 only
    payload: str
    size_bytes: int = Field(ge=0, le=0xFFFF_FFFF)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    version: str
    metrology_relevant: bool = False
    order: int = Field(ge=0, le=1000)
    ocpp: OcppSignature | None = None

    _check_version = field_validator("version")(_semver)

    @field_validator("install")
    @classmethod
    def _ways(cls, value: dict[Transport, list[InstallMethod]] | None) -> dict[Transport, list[InstallMethod]] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("names no transport: at least one way to install is needed")
        for transport, methods in value.items():
            if not 1 <= len(methods) <= len(INSTALL_METHODS) or len(set(methods)) != len(methods):
                raise ValueError(f"{transport}: 1 to {len(INSTALL_METHODS)} methods, each once")
            wrong = [m for m in methods if TRANSPORT_OF_METHOD[m] != transport]
            if wrong:
                raise ValueError(f"{', '.join(wrong)} does not run over {transport}")
        return value

    @property
    def ways(self) -> dict[Transport, tuple[InstallMethod, ...]]:
        """Each transport's acceptable methods, preferred first (format 1: its one method)."""
        if self.install is not None:
            return {transport: tuple(methods) for transport, methods in self.install.items()}
        assert self.install_method is not None  # the manifest's validator saw to it
        return {TRANSPORT_OF_METHOD[self.install_method]: (self.install_method,)}

    @property
    def ways_text(self) -> str:
        """For people: ``rauc over ssh, uboot-ymodem over serial``."""
        return ", ".join(f"{method} over {transport}" for transport, methods in self.ways.items() for method in methods)

    @property
    def methods(self) -> tuple[InstallMethod, ...]:
        """Every acceptable method, in the order the manifest gives them."""
        return tuple(method for methods in self.ways.values() for method in methods)

    @field_validator("payload")
    @classmethod
    def _payload_member(cls, value: str) -> str:
        if not PAYLOAD_NAME_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a payload member name such as payloads/rootfs.img")
        return value


class Manifest(_Strict):
    schema_: Literal["fieldkit-bundle"] = Field(alias="schema")
    schema_version: Literal[1, 2]
    bundle_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    vendor: str = Field(min_length=1, max_length=64)
    version: str
    security_version: int = Field(ge=0, le=2**31 - 1)
    created_at: Timestamp
    expires_at: Timestamp
    compatibility: list[Compatibility] = Field(min_length=1, max_length=256)
    release_notes: str = Field(default="", max_length=65536)
    components: list[Component] = Field(min_length=1, max_length=32)

    model_config = ConfigDict(**STRICT, populate_by_name=True)
    _check_version = field_validator("version")(_semver)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.expires_at <= self.created_at:
            raise ValueError("expires_at must be after created_at")
        for component in self.components:
            if self.schema_version == 1 and (component.install_method is None or component.install is not None):
                raise ValueError(f"component {component.name}: format 1 names one install_method (and no install)")
            if self.schema_version == 2 and (component.install is None or component.install_method is not None):
                raise ValueError(f"component {component.name}: format 2 names its ways in install (no install_method)")
        for attribute in ("name", "payload", "order"):
            values = [getattr(c, attribute) for c in self.components]
            if len(values) != len(set(values)):
                raise ValueError(f"two components share the same {attribute}")
        models = [c.model for c in self.compatibility]
        if len(models) != len(set(models)):
            raise ValueError("a model appears twice in the compatibility matrix")
        return self

    @property
    def models(self) -> list[str]:
        return [c.model for c in self.compatibility]

    @property
    def has_metrology_component(self) -> bool:
        return any(c.metrology_relevant for c in self.components)

    def components_in_order(self) -> list[Component]:
        return sorted(self.components, key=lambda c: c.order)

    def parsed_version(self) -> Version:
        return Version.parse(self.version)


def parse_manifest(document: Any) -> Manifest:
    """Validate an already-parsed, authenticated manifest document."""
    if not isinstance(document, dict):
        raise BundleRejectedError(CHECK, "manifest-invalid", "manifest.json is not a JSON object")
    version = document.get("schema_version")
    if document.get("schema") != SCHEMA or type(version) is not int or version not in READABLE_SCHEMA_VERSIONS:
        raise BundleRejectedError(
            CHECK,
            "unknown-schema-version",
            f"manifest schema {document.get('schema')!r} version {version!r} is not {SCHEMA!r} version "
            + " or ".join(str(v) for v in READABLE_SCHEMA_VERSIONS),
            f"this bundle needs a newer fieldkit; update fieldkit or ask for a bundle in format {SCHEMA_VERSION}",
        )
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        raise BundleRejectedError(
            CHECK,
            "manifest-invalid",
            f"manifest.json: {first_validation_error(exc, 'manifest')}",
            "the bundle was not made to the format in offline_bundles/README.md; ask its publisher",
        ) from exc


def manifest_template_errors(document: Any) -> list[str]:
    """For `bundle create`: what is wrong with a manifest before sizes and hashes are filled in."""
    try:
        Manifest.model_validate(document)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return []


def payload_member_for(component_name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", component_name)
    return f"payloads/{safe}"
