"""Delivering the audit trail to the back office, exactly once.

The laptop never deletes or rewrites entries. The outbox is simply "every
entry above the server's high-water mark": each round asks the server for its
mark, sends what follows in batches, and advances only to the mark the server
answers with. A lost response, a server killed mid-request, a duplicate or a
batch that overtook another all end the same way: the next round starts from
what the server really holds, and idempotency keys make resends harmless.

Failures back off exponentially with full jitter, so a fleet of laptops that
regain the network together does not hammer the server in step.
"""

from __future__ import annotations

import json
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from fieldkit.audit.store import AuditStore
from fieldkit.audit.wire import API_PREFIX, BatchResponse, SyncRefusal, batch_id_for
from fieldkit.errors import FieldkitError, UsageError
from fieldkit.safejson import load_json_file

DEFAULT_BATCH_ENTRIES: Final = 1000
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1")
MAX_CREDENTIAL_BYTES: Final = 64 * 1024


class SyncError(FieldkitError):
    exit_code = 7
    default_hint = "the entries stay on this laptop; sync again when the back office is reachable"


@dataclass(frozen=True)
class Credential:
    """What enrollment gives a laptop: where to sync, as whom, with which token."""

    backoffice_url: str
    laptop_id: str
    token: str
    ca_cert: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Credential:
        try:
            raw = load_json_file(path, MAX_CREDENTIAL_BYTES, 4)
            raw = raw if isinstance(raw, dict) else {}
            url, laptop_id, token, ca = (raw.get(k) for k in ("backoffice_url", "laptop_id", "token", "ca_cert"))
            if not (isinstance(url, str) and isinstance(laptop_id, str) and isinstance(token, str) and url and token):
                raise ValueError("it needs backoffice_url, laptop_id and token as text")
            if not isinstance(ca, str | None):
                raise ValueError("ca_cert must be the path of a CA certificate")
            return cls(url, laptop_id, token, Path(ca) if ca else None)
        except FileNotFoundError as exc:
            raise SyncError(
                f"no back-office credential at {path}",
                "enroll the laptop with `fieldkit backoffice enroll-laptop` and pass --credential",
            ) from exc
        except UsageError:
            raise
        except (OSError, ValueError) as exc:  # JsonShapeError is a ValueError
            raise SyncError(
                f"the back-office credential {path} is unreadable: {exc}", "enroll the laptop again"
            ) from exc


def _verify_setting(url: str, ca_cert: Path | None) -> ssl.SSLContext | bool:
    parts = urlsplit(url)
    if parts.scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            raise SyncError(
                f"{url} is plain HTTP to another machine",
                "the back office must be reached over https:// (plain http only on loopback)",
            )
        return True  # irrelevant for http
    if parts.scheme != "https":
        raise SyncError(f"{url} is not an http(s) URL", "use https://HOST:PORT")
    if ca_cert is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_cert))
    except (OSError, ssl.SSLError) as exc:
        raise SyncError(f"cannot load CA certificate {ca_cert}: {exc}", "pass the back office's CA (PEM)") from exc


class BackofficeClient:
    def __init__(self, credential: Credential, timeout_s: float = 15.0) -> None:
        self.credential = credential
        self._http = httpx.Client(
            base_url=credential.backoffice_url.rstrip("/") + API_PREFIX,
            verify=_verify_setting(credential.backoffice_url, credential.ca_cert),
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {credential.token}", "User-Agent": "fieldkit"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BackofficeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SyncError(f"back office unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise SyncError(
                f"the back office refused this laptop ({response.status_code}): {_detail(response)}",
                "enroll the laptop again with `fieldkit backoffice enroll-laptop`",
            )
        return response

    def reachable(self) -> bool:
        try:
            return self._http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def high_water_mark(self) -> int:
        response = self._request("GET", "/sync/status")
        if response.status_code != 200:
            raise SyncError(f"sync status failed ({response.status_code}): {_detail(response)}")
        return int(response.json()["high_water_mark"])

    def send(self, entries: list[dict[str, Any]]) -> BatchResponse | SyncRefusal:
        batch_id = batch_id_for(self.credential.laptop_id, entries)
        # Entries are already plain JSON objects: the stdlib encoder is the fast, exact way to send them.
        body = json.dumps(
            {"laptop_id": self.credential.laptop_id, "batch_id": batch_id, "entries": entries},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        response = self._request(
            "POST",
            "/sync/batches",
            content=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": batch_id},
        )
        if response.status_code == 200:
            return BatchResponse.model_validate(response.json())
        if response.status_code == 409:
            return SyncRefusal.model_validate(response.json())
        raise SyncError(f"the back office answered {response.status_code}: {_detail(response)}")

    def work_orders(self) -> list[bytes]:
        """Every published work order, each re-serialised as a document to verify locally."""
        response = self._request("GET", "/work-orders")
        if response.status_code != 200:
            raise SyncError(f"work order download failed ({response.status_code})")
        documents = response.json()
        if not isinstance(documents, list):
            raise SyncError("the back office sent work orders in an unknown shape")
        return [json.dumps(d).encode("utf-8") for d in documents]

    def trust_store(self) -> bytes | None:
        response = self._request("GET", "/trust-store")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SyncError(f"trust store download failed ({response.status_code})")
        return response.content


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body)[:200]
    except ValueError:
        return response.text[:200]


@dataclass(frozen=True)
class SyncResult:
    sent: int
    stored: int
    high_water_mark: int
    pending: int


def sync_round(store: AuditStore, client: BackofficeClient, batch_entries: int = DEFAULT_BATCH_ENTRIES) -> SyncResult:
    """One pass: start at the server's mark, send everything after it. Raises SyncError on failure."""
    mark = client.high_water_mark()
    if mark > store.head_seq:
        raise SyncError(
            f"the back office holds {mark} entries from this laptop, more than the {store.head_seq} it has",
            "this laptop's audit store was replaced or restored from an old backup; report it to the back office",
        )
    sent = stored = 0
    refusals = 0
    while mark < store.head_seq:
        batch: list[dict[str, Any]] = []
        for entry in store.entries(after_seq=mark, strict=True):  # a damaged segment stops the sync, named
            batch.append(entry)
            if len(batch) >= batch_entries:
                break
        if not batch or batch[0].get("seq") != mark + 1:
            raise SyncError(
                f"entry {mark + 1} is missing from this laptop's audit trail, so nothing after it can be delivered",
                "run `fieldkit audit verify`; keep a copy of the audit directory and report it to the back office",
            )
        answer = client.send(batch)
        sent += len(batch)
        if isinstance(answer, SyncRefusal):
            store.record_sync(min(answer.high_water_mark, store.head_seq), error=f"{answer.code}: {answer.detail}")
            refusals += 1
            # A gap or a lost race is resolved by starting again from the server's mark;
            # anything else (a broken chain, a bad signature) will not fix itself.
            if answer.code not in ("gap", "concurrent-delivery") or refusals > 3:
                raise SyncError(
                    f"the back office refused the batch: {answer.code}: {answer.detail}",
                    "the entries stay on this laptop; run `fieldkit audit verify` and report it",
                )
            mark = answer.high_water_mark
            continue
        stored += answer.stored
        mark = answer.high_water_mark
        store.record_sync(mark)
    store.record_sync(mark)
    return SyncResult(sent, stored, mark, store.head_seq - mark)


def backoff_delays(
    base_s: float = 0.5, cap_s: float = 60.0, rng: random.Random | None = None
) -> Callable[[int], float]:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""
    chooser = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def delay(attempt: int) -> float:
        return chooser.uniform(0, min(cap_s, base_s * (2**attempt)))

    return delay


def sync_with_retries(
    store: AuditStore,
    client: BackofficeClient,
    max_attempts: int,
    delay: Callable[[int], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Rounds until everything is delivered or ``max_attempts`` failed in a row."""
    delay = delay or backoff_delays()
    last: SyncError | None = None
    for attempt in range(max_attempts):
        try:
            if not client.reachable():  # cheap connectivity check before touching the outbox
                raise SyncError(f"back office {client.credential.backoffice_url} is not reachable")
            return sync_round(store, client)
        except SyncError as exc:
            last = exc
            store.record_sync(int(store.sync_state()["acked_seq"]), error=exc.message)
            if attempt + 1 < max_attempts:
                sleep(delay(attempt))
    assert last is not None
    raise last
