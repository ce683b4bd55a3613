"""Bundle format 2 (a component's install ways per transport) beside format 1 (one install method)."""

from __future__ import annotations

from typing import Any

import pytest

from fieldkit.bundles.manifest import parse_manifest
from fieldkit.errors import BundleRejectedError
from tests.support.bundle_lab import BundleLab


def _v2(lab: BundleLab, **component_changes: Any) -> dict[str, Any]:
    document = lab.manifest({"rootfs": b"R" * 100})
    document["schema_version"] = 2
    component = document["components"][0]
    del component["install_method"]
    component["install"] = {"ssh": ["rauc"], "serial": ["uboot-ymodem"]}
    component.update(component_changes)
    return document


def test_format_1_is_read_as_its_one_method_over_its_transport(lab: BundleLab) -> None:
    component = parse_manifest(lab.manifest({"rootfs": b"R" * 100})).components[0]
    assert component.ways == {"ssh": ("rauc",)}
    assert component.methods == ("rauc",)


def test_format_2_keeps_each_transports_methods_in_order(lab: BundleLab) -> None:
    document = _v2(lab, install={"serial": ["uboot-ymodem"], "ssh": ["swupdate", "rauc"]})
    component = parse_manifest(document).components[0]
    assert component.ways == {"serial": ("uboot-ymodem",), "ssh": ("swupdate", "rauc")}
    assert component.ways_text == "uboot-ymodem over serial, swupdate over ssh, rauc over ssh"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"install": {"serial": ["rauc"]}}, "does not run over serial"),
        ({"install": {"ssh": []}}, "1 to 7 methods"),
        ({"install": {"ssh": ["rauc", "rauc"]}}, "each once"),
        ({"install": {}}, "names no transport"),
        ({"install": {"can-bus": ["rauc"]}}, "install"),
        ({"install_method": "rauc"}, "format 2 names its ways in install"),
    ],
)
def test_format_2_refuses_ways_that_cannot_be(lab: BundleLab, changes: dict[str, Any], words: str) -> None:
    with pytest.raises(BundleRejectedError, match=words):
        parse_manifest(_v2(lab, **changes))


def test_format_1_refuses_format_2_fields(lab: BundleLab) -> None:
    document = lab.manifest({"rootfs": b"R" * 100})
    document["components"][0]["install"] = {"ssh": ["rauc"]}
    with pytest.raises(BundleRejectedError, match="format 1 names one install_method"):
        parse_manifest(document)


@pytest.mark.parametrize("version", [3, 0, True, "2", 2.0])
def test_an_unknown_format_version_is_refused_by_name(lab: BundleLab, version: object) -> None:
    document = lab.manifest({"rootfs": b"R" * 100})
    document["schema_version"] = version
    with pytest.raises(BundleRejectedError, match="version 1 or 2") as refused:
        parse_manifest(document)
    assert refused.value.code == "unknown-schema-version"
