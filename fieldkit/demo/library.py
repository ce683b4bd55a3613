"""The demo's bundle library: bundles for every simulated charger model, valid ones and ones that must fail.

``init_demo`` writes DIR/keys/, DIR/trust-store.json and DIR/*.fwbundle with
the same bytes every time, and an index saying what each bundle was made to
be, which ``fieldkit demo check`` verifies.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from fieldkit.bundles import keys
from fieldkit.bundles.build import create_bundle, sign_bundle
from fieldkit.bundles.demo_keys import demo_private_key
from fieldkit.bundles.manifest import SCHEMA_VERSION, TRANSPORT_OF_METHOD
from fieldkit.bundles.verify import ChargerFacts
from fieldkit.config import Limits
from fieldkit.demo.pki import CREATED, DemoPki, demo_ec_key, write_demo_keys, write_file
from fieldkit.simulator.catalog import SimulatedModel, model_named
from fieldkit.simulator.image import ImageHeader
from fieldkit.simulator.mcuboot_image import mcuboot_image

EXPIRES: Final = dt.datetime(2036, 1, 15, tzinfo=dt.UTC)
DEFAULT_PAYLOAD_BYTES: Final = 2 * 1024 * 1024  # a transfer long enough to see on the slow demo link


INDEX_NAME: Final = "demo-index.json"


@dataclass(frozen=True)
class DemoBundle:
    file_name: str
    model: str
    expectation: str  # what a verification against the simulated charger should say, in words
    expected_code: str = ""  # the refusal code expected, "" for a valid bundle

    def as_dict(self) -> dict[str, str]:
        return {
            "file": self.file_name,
            "model": self.model,
            "expectation": self.expectation,
            "expected_code": self.expected_code,
        }


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def demo_payload(
    path: Path, model: SimulatedModel, component: str, version: str, size_bytes: int, security_version: int
) -> None:
    """A simulated firmware image: a header the simulator checks before booting it, then filler.

    An MCU board's image (mcumgr SMP) is an MCUboot image around it, as a real board takes.
    """
    header = ImageHeader(model.vendor, model.model, component, version, security_version).to_bytes()
    rng = random.Random(f"{model.model}/{component}/{version}")  # noqa: S311 - filler, not crypto
    if model.transport == "serial-smp":
        body = header + rng.randbytes(max(0, size_bytes - len(header)))
        path.write_bytes(mcuboot_image(body, version))
        return
    with path.open("wb") as handle:
        handle.write(header)
        remaining = max(0, size_bytes - len(header))
        while remaining:
            step = min(remaining, 1 << 20)
            handle.write(rng.randbytes(step))
            remaining -= step


def _manifest(
    model: SimulatedModel,
    version: str,
    security_version: int,
    components: list[dict[str, Any]],
    created: dt.datetime = CREATED,
    expires: dt.datetime = EXPIRES,
    models: list[str] | None = None,
    notes: str = "",
) -> dict[str, Any]:
    return {
        "schema": "fieldkit-bundle",
        "schema_version": SCHEMA_VERSION,
        "bundle_id": f"demo-{model.model.lower()}-{version}",
        "vendor": model.vendor,
        "version": version,
        "security_version": security_version,
        "created_at": _iso(created),
        "expires_at": _iso(expires),
        "compatibility": [
            {"model": name, "hardware_revisions": list(model.hardware_revisions)} for name in (models or [model.model])
        ],
        "release_notes": notes or f"# {model.model} {version}\n\nDEMO release for the simulated {model.model}.",
        "components": components,
    }


def _install_ways(method: str, target: str) -> dict[str, list[str]]:
    """A component installs with its updater; a Linux rootfs may also be recovered over U-Boot's console."""
    transport = TRANSPORT_OF_METHOD[method]
    if transport == "ssh" and target == "rootfs":
        return {"ssh": [method], "serial": ["uboot-ymodem"]}
    return {transport: [method]}


def _component(comp_name: str, model: SimulatedModel, version: str, order: int) -> dict[str, Any]:
    spec = next(c for c in model.components if c.name == comp_name)
    return {
        "name": spec.name,
        "target": spec.target,
        "install": _install_ways(spec.install_method, spec.target),
        "version": version,
        "metrology_relevant": spec.metrology_relevant,
        "order": order,
    }


def _build_bundle(
    out: Path,
    model: SimulatedModel,
    version: str,
    security_version: int,
    comp_names: list[str],
    signers: list[keys.PrivateKey],
    payload_bytes: int,
    scratch: Path,
    chain: list[str] | None = None,
    chain_signer: keys.PrivateKey | None = None,
    ocpp_pki: DemoPki | None = None,
    **manifest_args: Any,
) -> None:
    """Make simulated images for ``comp_names``, pack them into ``out`` and sign it.

    ``chain`` goes with ``chain_signer``'s signature only; with ``ocpp_pki``, each
    payload also carries an OCPP firmware signature.
    """
    payloads: dict[str, Path] = {}
    components = []
    for order, comp_name in enumerate(comp_names):
        payload = scratch / f"{out.name}-{comp_name}.img"
        demo_payload(payload, model, comp_name, version, payload_bytes, security_version)
        payloads[comp_name] = payload
        component = _component(comp_name, model, version, order)
        if ocpp_pki is not None:
            component["ocpp"] = _ocpp_signature(payload, ocpp_pki)
        components.append(component)
    limits = Limits()
    create_bundle(_manifest(model, version, security_version, components, **manifest_args), payloads, out, limits)
    for signer in signers:
        sign_bundle(out, signer, limits, chain if signer is chain_signer else None)


def init_demo(directory: Path, payload_bytes: int = DEFAULT_PAYLOAD_BYTES) -> list[DemoBundle]:
    """Write DIR/keys/, DIR/trust-store.json and DIR/*.fwbundle; return what was made."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = DemoPki()
    write_demo_keys(directory / "keys", pki)
    write_file(directory / "trust-store.json", pki.trust_store_bytes())
    release, metrology = demo_private_key("demo-release"), demo_private_key("demo-metrology")
    oem_key = demo_private_key("demo-oem-signing")
    made: list[DemoBundle] = []
    ac22, dc150, wb7 = model_named("VQ-AC22"), model_named("VQ-DC150"), model_named("AMP-WB7")
    ks60, nv7 = model_named("KS-DC60"), model_named("NV-AC7")

    with tempfile.TemporaryDirectory(prefix="fieldkit-demo-") as scratch_name:
        scratch = Path(scratch_name)

        def bundle(
            file_name: str,
            model: SimulatedModel,
            version: str,
            security_version: int,
            comp_names: list[str],
            expectation: str,
            signers: list[keys.PrivateKey],
            expected_code: str = "",
            chain: list[str] | None = None,
            ocpp: bool = False,
            **manifest_args: Any,
        ) -> None:
            _build_bundle(
                directory / file_name,
                model,
                version,
                security_version,
                comp_names,
                signers,
                payload_bytes,
                scratch,
                chain=chain,
                chain_signer=oem_key,
                ocpp_pki=pki if ocpp else None,
                **manifest_args,
            )
            made.append(DemoBundle(file_name, model.model, expectation, expected_code))

        bundle("demo-vq-ac22-2.4.0.fwbundle", ac22, "2.4.0", 4, ["rootfs"], "valid", [release])
        bundle("demo-vq-dc150-4.2.0.fwbundle", dc150, "4.2.0", 6, ["rootfs"], "valid", [release])
        bundle("demo-ks-dc60-3.2.0.fwbundle", ks60, "3.2.0", 3, ["rootfs"], "valid (SWUpdate)", [release])
        bundle("demo-nv-ac7-1.5.0.fwbundle", nv7, "1.5.0", 2, ["rootfs"], "valid (Mender)", [release])
        bundle(
            "demo-vq-dc150-4.2.0-meter-METROLOGY.fwbundle",
            dc150,
            "4.2.0",
            6,
            ["rootfs", "meter"],
            "valid (metrology-relevant: needs the typed confirmation)",
            [release, metrology],
        )
        bundle(
            "demo-amp-wb7-1.9.0-OCPP-SIGNED.fwbundle",
            wb7,
            "1.9.0",
            3,
            ["app"],
            "valid (X.509 release chain, OCPP firmware signature)",
            [oem_key],
            chain=[pki.pem(pki.oem_signing)],
            ocpp=True,
        )
        bundle(
            "demo-vq-ac22-2.2.0-EXPIRED.fwbundle",
            ac22,
            "2.2.0",
            3,
            ["rootfs"],
            "rejected: expired",
            [release],
            "expired",
            created=dt.datetime(2024, 1, 15, tzinfo=dt.UTC),
            expires=dt.datetime(2025, 1, 15, tzinfo=dt.UTC),
        )
        bundle(
            "demo-vq-ac22-1.9.0-DOWNGRADE.fwbundle",
            ac22,
            "1.9.0",
            1,
            ["rootfs"],
            "rejected: downgrade below the charger's security version",
            [release],
            "downgrade",
        )
        bundle(
            "demo-vq-ac11-3.0.0-OTHER-MODEL.fwbundle",
            ac22,
            "3.0.0",
            5,
            ["rootfs"],
            "rejected: made for another model",
            [release],
            "wrong-model",
            models=["VQ-AC11"],
        )
        bundle(
            "demo-vq-dc150-4.3.0-meter-UNAPPROVED.fwbundle",
            dc150,
            "4.3.0",
            7,
            ["rootfs", "meter"],
            "rejected: metrology component without metrology signature",
            [release],
            "metrology-signature-missing",
        )
    write_file(directory / INDEX_NAME, json.dumps([b.as_dict() for b in made], indent=2).encode("utf-8") + b"\n")
    return made


def read_index(directory: Path) -> list[DemoBundle]:
    """What `init_demo` made in ``directory``: each bundle, its target model, its expected verdict."""
    entries = json.loads((directory / INDEX_NAME).read_text(encoding="utf-8"))
    return [DemoBundle(e["file"], e["model"], e["expectation"], e["expected_code"]) for e in entries]


def _ocpp_signature(payload: Path, pki: DemoPki) -> dict[str, str]:
    import hashlib

    digest = hashlib.sha256(payload.read_bytes()).digest()
    signature = demo_ec_key("demo-ocpp-signing").sign(
        digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()), deterministic_signing=True)
    )
    return {
        "signature": base64.b64encode(signature).decode("ascii"),
        "signing_certificate": pki.pem(pki.ocpp_signing),
    }


def charger_facts_for(model_name: str) -> ChargerFacts:
    """What the simulated charger of ``model_name`` reports, for demo checks."""
    model = model_named(model_name)
    return ChargerFacts(
        model=model.model,
        hardware_revision=model.hardware_revisions[-1],
        installed_version=model.installed_version,
        installed_security_version=model.security_version_floor,
    )


def make_release_bundle(out: Path, model_name: str, version: str, security_version: int, payload_bytes: int) -> Path:
    """One valid, demo-signed bundle updating every component of a simulated model to ``version``.

    For benchmarks, the demo and tests that need a bundle of a given size
    without rebuilding the whole demo set. Metrology-relevant components get
    the metrology signature too.
    """
    model = model_named(model_name)
    signers = [demo_private_key("demo-release")]
    if any(c.metrology_relevant for c in model.components):
        signers.append(demo_private_key("demo-metrology"))
    with tempfile.TemporaryDirectory(prefix="fieldkit-bundle-") as scratch_name:
        _build_bundle(
            out,
            model,
            version,
            security_version,
            [c.name for c in model.components],
            signers,
            payload_bytes,
            Path(scratch_name),
        )
    return out
