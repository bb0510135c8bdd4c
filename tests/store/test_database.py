"""`Database.read_with`, for the mail services' engines without the ping on checkout: a connection the
database closed (a restart) costs no failed lookup, and other errors are not retried."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from postwerk.service_main import POSTGRES_LOOKUP_LIMIT_MS, mail_service_database
from postwerk.store.repository import Database
from tests.conftest import unpinged_engine

NAME = "postwerk-read-with-test"


@pytest.mark.parametrize("kept", [False, True], ids=["pooled", "kept"])
def test_a_closed_connection_is_read_again_on_a_new_one(engine: Engine, kept: bool) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to close a connection")
    unpinged = unpinged_engine(engine, NAME)
    database = Database(unpinged, keeps_read_connections=kept)
    tries: list[int] = []

    def read(connection: object) -> int:
        tries.append(1)
        return int(connection.execute(text("SELECT 41 + 1")).scalar_one())  # type: ignore[attr-defined]

    try:
        assert database.read_with(read) == 42
        with engine.connect() as connection:
            closed = connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": NAME},
            ).all()
        assert closed == [(True,)]
        assert database.read_with(read) == 42
        assert len(tries) == 3  # the first read, the one on the closed connection, the one after it

        def failing(connection: object) -> int:
            tries.append(1)
            return int(connection.execute(text("SELECT 1 / 0")).scalar_one())  # type: ignore[attr-defined]

        with pytest.raises(DBAPIError):
            database.read_with(failing)
        assert len(tries) == 4  # not a dead connection: not tried again
    finally:
        database.close_kept_connections()
        unpinged.dispose()


def test_a_kept_read_connection_serves_every_read_outside_any_transaction(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("connections are kept on PostgreSQL only")
    unpinged = unpinged_engine(engine, NAME)
    database = Database(unpinged, keeps_read_connections=True)
    backend = text("SELECT pg_backend_pid()")
    try:
        first = database.read_with(lambda connection: connection.execute(backend).scalar_one())
        again = database.read_with(lambda connection: connection.execute(backend).scalar_one())
        assert first == again
        with engine.connect() as connection:
            state = connection.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": first}
            ).scalar_one()
        # Not "idle in transaction": a kept connection holds no snapshot and no lock (a migration's ALTER
        # TABLE, VACUUM) between lookups.
        assert state == "idle"
    finally:
        database.close_kept_connections()
        unpinged.dispose()


def test_the_mail_services_read_inline_with_every_lookup_bounded(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        url += "?options=-csearch_path%3Dsomewhere_else"  # options of the URL's own are kept
    database = mail_service_database(url, pool_size=1)
    try:
        assert database.reads_inline
        if engine.dialect.name == "postgresql":
            show = text("SELECT current_setting('statement_timeout'), current_setting('search_path')")
            settings = database.read_with(lambda connection: tuple(connection.execute(show).one()))
            assert settings == (f"{POSTGRES_LOOKUP_LIMIT_MS // 1000}s", "somewhere_else")
    finally:
        database.engine.dispose()
