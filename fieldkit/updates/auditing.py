"""How update jobs appear in the audit trail: one entry per transition, the charger named as it named itself."""

from __future__ import annotations

from pathlib import Path

from fieldkit.audit.entry import BundleRef, ChargerRef
from fieldkit.audit.recorder import AuditRecorder
from fieldkit.domain import ChargerIdentity, versions_text
from fieldkit.updates.engine import AuditHook
from fieldkit.updates.journal import JobRecord
from fieldkit.updates.preflight import PreflightResult

FAILURE_STATES = frozenset({"InstallationFailed", "InstallVerificationFailed"})
AuditFields = str | ChargerRef | BundleRef | None  # the values of an audit entry's fields, as passed to record()


def charger_ref_of_record(record: JobRecord) -> ChargerRef:
    return ChargerRef(
        vendor=record.charger_vendor,
        model=record.charger_model,
        hardware_revision=record.charger_hardware_revision,
        serial=record.charger_serial,
        address=record.charger_address,
    )


def charger_ref_of_identity(identity: ChargerIdentity, address: str) -> ChargerRef:
    return ChargerRef(
        vendor=identity.vendor,
        model=identity.model,
        hardware_revision=identity.hardware_revision,
        serial=identity.serial,
        address=address,
    )


def transition_hook(recorder: AuditRecorder) -> AuditHook:
    """An engine hook writing each transition (and Resumed) as an `update.transition` entry."""

    def hook(record: JobRecord, status: str, note: str) -> None:
        component = record.components[min(record.component_index, len(record.components) - 1)]
        recorder.record(
            "update.transition",
            charger=charger_ref_of_record(record),
            bundle=BundleRef(bundle_id=record.bundle_id, version=record.to_versions.get(component)),
            from_version=record.from_versions.get(component),
            to_version=record.to_versions.get(component),
            status=status,
            note=f"{component}: {note}"[:4000] if note else component,
            error=record.error if status in FAILURE_STATES else None,
        )

    return hook


def running_versions(identity: ChargerIdentity) -> str:
    return versions_text({name: c.version for name, c in identity.components.items()})


def rollback_entry(before: ChargerIdentity, after: ChargerIdentity, address: str) -> dict[str, AuditFields]:
    """The fields of the `rollback` audit entry for a rollback asked for by hand (CLI or TUI)."""
    return {
        "status": "RolledBack",
        "note": f"now running {running_versions(after)}",
        "charger": charger_ref_of_identity(after, address),
        "from_version": next(iter(before.components.values())).version,
        "to_version": next(iter(after.components.values())).version,
    }


def refusal_entry(
    result: PreflightResult, identity: ChargerIdentity, address: str, bundle: Path
) -> dict[str, AuditFields]:
    """The fields of the `update.refused` audit entry when preflight stops an update (CLI or TUI)."""
    manifest = result.report.manifest
    reasons = "; ".join(f"{c.name}: {c.reason}" for c in result.refused)
    return {
        "status": "Refused",
        "error": reasons[:2000],
        "charger": charger_ref_of_identity(identity, address),
        "bundle": BundleRef(bundle_id=manifest.bundle_id if manifest else bundle.name[:128]),
    }
