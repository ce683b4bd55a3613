"""The back-office ASGI service (FastAPI). OpenAPI is served at /docs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from fieldkit import __version__
from fieldkit.audit.wire import (
    API_PREFIX,
    MAX_BATCH_BYTES,
    BatchRequest,
    BatchResponse,
    SyncRefusal,
    SyncStatus,
)
from fieldkit.backoffice import reports
from fieldkit.backoffice.db import (
    POOL_OVERFLOW,
    POOL_SIZE,
    Credential,
    Laptop,
    TrustStoreRelease,
    WorkOrderRelease,
    make_engine,
    session_factory,
)
from fieldkit.backoffice.guard import MISS_LANES, ConcurrencyLimit, KnownTokens, busy_error, read_body_limited
from fieldkit.backoffice.ingest import AuthError, SyncConflict, authenticate, bearer_digest, ingest_batch
from fieldkit.safejson import JsonShapeError, parse_bounded

HEALTH_PATH: Final = f"{API_PREFIX}/health"
SLOT_WAIT_S: Final = 2.0  # how long a request may wait for a free slot before it is told 503


def _session(request: Request) -> Iterator[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]
AuthHeader = Annotated[str | None, Header()]


def create_app(database_url: str) -> FastAPI:
    engine = make_engine(database_url)
    app = FastAPI(
        title="fieldkit back office",
        version=__version__,
        description="Ingests signed audit trails from fieldkit laptops and reports on the fleet.",
    )
    app.state.sessions = session_factory(engine)
    app.state.engine = engine
    known_tokens = KnownTokens(app.state.sessions)
    app.add_middleware(
        ConcurrencyLimit,
        limit=POOL_SIZE + POOL_OVERFLOW - MISS_LANES,  # the lanes keep their connections
        wait_s=SLOT_WAIT_S,
        exempt=frozenset({HEALTH_PATH}),
    )

    @app.exception_handler(AuthError)
    async def _auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        # A refused request's body is left unread, so the server drops the connection: say so, so that a
        # client does not send its next request on a connection that is about to close.
        headers = {"Connection": "close", **({"WWW-Authenticate": "Bearer"} if exc.status == 401 else {})}
        return JSONResponse(
            {"code": "unauthorized" if exc.status == 401 else "forbidden", "detail": exc.detail},
            status_code=exc.status,
            headers=headers,
        )

    @app.exception_handler(SyncConflict)
    async def _conflict(_request: Request, exc: SyncConflict) -> JSONResponse:
        body = SyncRefusal(code=exc.code, detail=exc.detail, high_water_mark=exc.high_water_mark)
        return JSONResponse(body.model_dump(), status_code=409)

    def checked(s: Session, authorization: str | None, kind: str) -> Credential:
        digest = bearer_digest(authorization)
        # A token whose digest the service has never seen is refused without a database connection.
        seen = known_tokens.check(digest)
        if seen == "unknown":
            raise AuthError(401, "unknown or revoked credential")
        if seen == "busy":
            raise busy_error()
        return authenticate(s, digest, kind)

    def laptop(s: Session, authorization: str | None) -> Credential:
        return checked(s, authorization, "laptop")

    def operator(s: Session, authorization: str | None) -> Credential:
        return checked(s, authorization, "operator")

    @app.get(HEALTH_PATH)
    async def health() -> dict[str, str]:
        # async and without I/O: answered on the event loop even while every worker thread is busy.
        return {"status": "ok", "version": __version__}

    @app.get(f"{API_PREFIX}/sync/status", response_model=SyncStatus)
    def sync_status(s: SessionDep, authorization: AuthHeader = None) -> SyncStatus:
        credential = laptop(s, authorization)
        row = s.get(Laptop, credential.subject)
        if row is None or row.revoked:
            raise AuthError(403, "unknown or revoked laptop")
        return SyncStatus(laptop_id=row.laptop_id, high_water_mark=row.head_seq, head_hash=row.head_hash)

    @app.post(
        f"{API_PREFIX}/sync/batches",
        response_model=BatchResponse,
        responses={409: {"model": SyncRefusal}, 401: {}, 403: {}, 413: {}},
    )
    async def sync_batch(request: Request, s: SessionDep, authorization: AuthHeader = None) -> BatchResponse:
        # Before reading the body (strangers send nothing big), and off the event loop: it may query.
        credential = await run_in_threadpool(laptop, s, authorization)
        body = await read_body_limited(request, MAX_BATCH_BYTES)
        try:
            document = parse_bounded(body, MAX_BATCH_BYTES, 32)
            batch = BatchRequest.model_validate(document)
        except (JsonShapeError, ValidationError) as exc:
            raise HTTPException(400, f"malformed batch: {str(exc).splitlines()[0]}") from exc
        # The ingest is blocking database work: keep it off the event loop.
        return await run_in_threadpool(ingest_batch, s, credential, batch)

    @app.get(f"{API_PREFIX}/trust-store")
    def trust_store(s: SessionDep, authorization: AuthHeader = None) -> Response:
        laptop(s, authorization)
        newest = s.scalars(select(TrustStoreRelease).order_by(TrustStoreRelease.version.desc())).first()
        if newest is None:
            raise HTTPException(404, "no trust store published")
        return Response(newest.content, media_type="application/json")

    @app.get(f"{API_PREFIX}/work-orders")
    def work_orders(s: SessionDep, authorization: AuthHeader = None) -> list[dict[str, Any]]:
        laptop(s, authorization)
        rows = s.scalars(select(WorkOrderRelease).order_by(WorkOrderRelease.work_order_id))
        return [json.loads(row.content) for row in rows]

    @app.get(f"{API_PREFIX}/reports/chargers")
    def report_chargers(s: SessionDep, authorization: AuthHeader = None) -> list[dict[str, Any]]:
        operator(s, authorization)
        return reports.chargers(s)

    @app.get(f"{API_PREFIX}/reports/chargers.csv", response_class=PlainTextResponse)
    def report_chargers_csv(s: SessionDep, authorization: AuthHeader = None) -> PlainTextResponse:
        operator(s, authorization)
        return PlainTextResponse(reports.chargers_csv(s), media_type="text/csv")

    @app.get(f"{API_PREFIX}/reports/bundles")
    def report_bundles(s: SessionDep, authorization: AuthHeader = None) -> list[dict[str, Any]]:
        operator(s, authorization)
        return reports.bundles(s)

    @app.get(f"{API_PREFIX}/reports/fragmentation")
    def report_fragmentation(s: SessionDep, authorization: AuthHeader = None) -> list[dict[str, Any]]:
        operator(s, authorization)
        return reports.fragmentation(s)

    return app
