"""The two read-only helper programs a charger may ship, as fieldkit reads their JSON.

``charger-identity --json`` and ``charger-status --json`` (README, "Charger
helper programs"; the ``fieldkit-helpers`` profile). What a charger prints is
input from outside: every field is typed and bounded here, extra fields are
ignored (a newer charger may say more), and a shape that does not fit is one
line naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fieldkit.errors import DeviceRefusedError

Text = Annotated[str, Field(max_length=256)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
MAX_ENTRIES = 64  # components or connectors one charger reports


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HelperComponent(_Answer):
    running_version: Text | None
    active_slot: Text = "?"
    state: Literal["committed", "pending"] = "committed"
    pending_slot: Text | None = None
    install_method: Text | None = None


class HelperIdentity(_Answer):
    vendor: Text
    model: Text
    hardware_revision: Text
    serial: Text
    components: Annotated[dict[Name, HelperComponent], Field(max_length=MAX_ENTRIES)]
    security_version_floor: Annotated[int, Field(ge=0, le=2**32)] | None = None  # null: the charger cannot tell
    transaction_active: bool | None = None  # null: the charger cannot tell
    meter_wh: Annotated[int, Field(ge=0, le=2**63)] = 0
    connectors: Annotated[list[Text], Field(max_length=MAX_ENTRIES)] = []
    staging_dir: Text | None = None  # checked further by linux_ssh.reported_staging_dir


class HelperConnector(_Answer):
    id: int
    status: Text


class HelperRunning(_Answer):
    running_version: Text | None


class HelperStatus(_Answer):
    connectors: Annotated[list[HelperConnector], Field(max_length=MAX_ENTRIES)]
    meter_wh: Annotated[int, Field(ge=0, le=2**63)]
    transaction_active: bool | None = None
    components: Annotated[dict[Name, HelperRunning], Field(max_length=MAX_ENTRIES)]
    boot_id: Text | None = None


AnswerT = TypeVar("AnswerT", bound=_Answer)


def parse_answer(model: type[AnswerT], program: str, document: object) -> AnswerT:
    """``document`` (parsed JSON) as ``model``, or a refusal naming the first field that does not fit."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise DeviceRefusedError(
            f"`{program}` answered in a shape fieldkit cannot use: {where}: {first['msg']}",
            "the charger's helper programs do not follow the format in README (Charger helper programs)",
        ) from exc
