"""Engines for both backends and the migrations that shape them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(dbapi_connection: Any, _entry: ConnectionPoolEntry) -> None:
    # The driver's own transaction handling is turned off so that BEGIN IMMEDIATE below takes the write
    # lock at the start of every transaction: no deadlocked upgrade from a read to a write lock.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


WRITE_OPTION = "postwerk_write"
READ_OPTION = "postwerk_read"


def _begin_sqlite(connection: Connection) -> None:
    # Writers take the write lock up front (and wait for it under busy_timeout); plain reads run each
    # statement on its own (under WAL they never wait for anyone); anything else is a deferred transaction.
    options = connection.get_execution_options()
    if options.get(READ_OPTION, False):
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION, False) else "BEGIN")


# hide_parameters: statement parameters (password hashes among them) never reach logs or error messages.
def create_db_engine(
    url: str, *, pool_size: int = 20, connect_args: dict[str, Any] | None = None, pre_ping: bool = True
) -> Engine:
    """`pre_ping=False` only for callers that retry whatever fails (see `Database.for_retried_reads`)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            hide_parameters=True,
            connect_args={"check_same_thread": False, **(connect_args or {})},
        )
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A round trip per checkout, kept on purpose: without it the first request after a database restart
        # fails, and clients such as mittwald's `mw` back off for minutes on a 5xx (measured: ~10-25 % of a
        # single GET on loopback, bench/service_calls.py).
        pool_pre_ping=pre_ping,
        hide_parameters=True,
        connect_args=connect_args or {},
    )


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")
