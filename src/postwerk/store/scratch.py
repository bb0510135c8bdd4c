"""Throw-away databases for tests and benchmarks: a migrated SQLite file or a PostgreSQL schema of its
own, removed afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, make_url, text

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


@contextmanager
def scratch_postgres_role(url: str, prefix: str = "pw_scratch") -> Iterator[tuple[Engine, str]]:
    """A fresh, migrated schema and a URL of a throw-away role whose default search_path it is: for clients
    that cannot set a search_path themselves (Postfix's and Dovecot's pgsql clients). Both go away on exit,
    also the role's connections that outlive their clients for a moment."""
    with scratch_postgres(url, prefix=prefix) as engine:
        with engine.connect() as connection:
            schema = str(connection.execute(text("SELECT current_schema()")).scalar())
        role = f"{prefix}_{secrets.token_hex(4)}"
        admin = create_db_engine(url, pool_size=1)
        with admin.begin() as connection:
            for statement in (
                f'CREATE ROLE "{role}" LOGIN',
                f'ALTER ROLE "{role}" SET search_path = "{schema}"',
                f'GRANT ALL ON SCHEMA "{schema}" TO "{role}"',
                f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"',
                f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"',
                f'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA "{schema}" TO "{role}"',
            ):
                connection.execute(text(statement))
        try:
            yield (
                engine,
                str(engine.url.set(username=role, password=None).render_as_string(hide_password=False)),
            )
        finally:
            with admin.begin() as connection:
                connection.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role"),
                    {"role": role},
                )
                connection.execute(text(f'DROP OWNED BY "{role}"'))
                connection.execute(text(f'DROP ROLE "{role}"'))
            admin.dispose()


def through_socket(url: str, engine: Engine) -> str:
    """`url` (of the server `engine` is connected to) through that server's Unix socket instead of TCP
    (libpq's `?host=/folder`): for tests and benchmarks of a one-machine installation."""
    with engine.connect() as connection:
        folders = str(connection.exec_driver_sql("SHOW unix_socket_directories").scalar())
    parsed = make_url(url)
    query = {"host": folders.split(",")[0].strip(), "port": str(parsed.port or 5432)}
    return (
        parsed._replace(host=None, port=None).update_query_dict(query).render_as_string(hide_password=False)
    )
