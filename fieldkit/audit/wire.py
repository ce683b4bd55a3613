"""The sync protocol between a laptop and the back office (JSON over HTTPS).

    GET  /api/v1/health              no auth; connectivity check
    GET  /api/v1/sync/status         -> SyncStatus
    POST /api/v1/sync/batches        BatchRequest -> BatchResponse | 409 SyncRefusal
    GET  /api/v1/trust-store         -> the newest published trust store file, or 404

Laptops authenticate with ``Authorization: Bearer <token>`` (issued at
enrollment). A batch holds consecutive entries in ascending ``seq``; its
``batch_id`` is derived from its content, so a resent batch has the same id
and the server answers it from its record instead of storing anything twice.
The server always answers with its high-water mark: the highest ``seq`` it
holds for that laptop, every entry up to it stored and chained.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

API_PREFIX: Final = "/api/v1"
MAX_BATCH_ENTRIES: Final = 1000
MAX_BATCH_BYTES: Final = 16 * 1024 * 1024


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    laptop_id: str = Field(pattern=r"^laptop-[0-9a-f]{16}$")
    batch_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    entries: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH_ENTRIES)


class BatchResponse(BaseModel):
    model_config = ConfigDict(strict=True)

    high_water_mark: int
    stored: int
    duplicates: int
    replayed: bool = False


class SyncRefusal(BaseModel):
    model_config = ConfigDict(strict=True)

    code: str
    detail: str
    high_water_mark: int


class SyncStatus(BaseModel):
    model_config = ConfigDict(strict=True)

    laptop_id: str
    high_water_mark: int
    head_hash: str


def batch_id_for(laptop_id: str, entries: list[dict[str, Any]]) -> str:
    """Same entries, same id: what makes a resent batch recognisable."""
    from fieldkit.audit.entry import entry_hash

    digest = hashlib.sha256(laptop_id.encode())
    for entry in entries:
        digest.update(entry_hash(entry).encode())
    return digest.hexdigest()[:32]
