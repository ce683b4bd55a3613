"""Back-office storage: SQLAlchemy 2 models; SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from typing import Any, Final

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Laptop(Base):
    __tablename__ = "laptops"

    laptop_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    public_key_pem: Mapped[str] = mapped_column(Text)
    enrolled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    head_seq: Mapped[int] = mapped_column(Integer, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))


class Credential(Base):
    """A bearer token, stored only as its SHA-256."""

    __tablename__ = "credentials"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "laptop" or "operator"
    subject: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Entry(Base):
    __tablename__ = "audit_entries"

    laptop_id: Mapped[str] = mapped_column(ForeignKey("laptops.laptop_id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(36), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    wall_utc: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    clock_trust: Mapped[str] = mapped_column(String(16))
    technician_id: Mapped[str] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(128), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(64), nullable=True)
    charger_serial: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    charger_vendor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    charger_model: Mapped[str | None] = mapped_column(String(64), nullable=True)
    hardware_revision: Mapped[str | None] = mapped_column(String(32), nullable=True)
    bundle_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    from_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raw_json: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


Index("ix_entries_charger_time", Entry.charger_serial, Entry.wall_utc)


class Batch(Base):
    """Batches already answered, by idempotency key, so a resend is answered, not re-stored."""

    __tablename__ = "sync_batches"

    batch_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # laptop id + batch id
    laptop_id: Mapped[str] = mapped_column(String(32))
    high_water_mark: Mapped[int] = mapped_column(Integer)
    stored: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrustStoreRelease(Base):
    __tablename__ = "trust_store_releases"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    published_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkOrderRelease(Base):
    """A signed work order as published; laptops verify it against their own trust store."""

    __tablename__ = "work_orders"

    work_order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    published_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def sqlite_url(path: str) -> str:
    return f"sqlite+pysqlite:///{path}"


# Connections the service may hold; the ASGI concurrency limit (guard.py) is sized from the same numbers, so a
# request that got a slot does not then wait for a connection.
POOL_SIZE: Final = 8
POOL_OVERFLOW: Final = 8
POOL_TIMEOUT_S: Final = 10


SQLITE_BUSY_TIMEOUT_S: Final = 30


def _use_write_ahead_log(cursor: Any) -> None:
    """WAL, so readers do not block the ingest writer; the mode is stored in the file, so set once.

    Switching is refused at once (no busy wait) while another process holds the database, as when two
    back-office processes open a fresh one together: wait for it, bounded by the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")  # an in-memory database stays in memory: fine
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return  # the other process switched it
        time.sleep(0.02)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; tables are created if missing."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql") or (url.startswith("sqlite:///") and ":memory:" not in url):
        kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=POOL_TIMEOUT_S)
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            _use_write_ahead_log(cursor)
            cursor.execute("PRAGMA synchronous=FULL")  # a stored entry survives a power cut
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    _create_missing_tables(engine)
    return engine


# Any fixed number: it names the lock that serialises schema creation among back-office processes.
_SCHEMA_LOCK_KEY: Final = 0x6669656C64  # "field"


def _create_missing_tables(engine: Engine) -> None:
    """Create what is missing, holding the database's write lock from the check to the last CREATE.

    Two processes often start on a fresh database together (``serve`` and ``enroll-laptop``, or several
    workers); without the lock both see a table missing and the second CREATE fails.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # waits (the connect timeout) for another writer
        elif engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        Base.metadata.create_all(connection)
        connection.commit()


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
