"""Throw-away databases for tests and benchmarks: a migrated SQLite file or a PostgreSQL schema of its
own, removed afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from postwerk.store.db import create_db_engine, upgrade


@contextmanager
def scratch_sqlite(folder: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{folder / 'postwerk.db'}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def scratch_postgres(url: str, prefix: str = "pw_scratch") -> Iterator[Engine]:
    """An engine whose search_path is a fresh, migrated schema; the schema is dropped on exit."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_db_engine(url, pool_size=1)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_db_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
