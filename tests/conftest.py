"""Shared test setup: the two databases, the official spec, and the CI rule that neither may be missing."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from postwerk.store.db import create_db_engine, upgrade

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
SPEC_PATH = SHARED_REFERENCE / "mittwald-openapi-mail.json"
POSTGRES_URL = os.environ.get("POSTWERK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    """Skip with the reason on a developer's machine; under CI a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def postgres_reachable() -> str | None:
    try:
        engine = create_db_engine(POSTGRES_URL, pool_size=1)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as error:  # any failure means: no usable PostgreSQL here
        return f"no PostgreSQL at {POSTGRES_URL}: {type(error).__name__}"


@pytest.fixture(scope="session")
def spec_path() -> Path:
    if not SPEC_PATH.is_file():
        missing(f"the official spec is not at {SPEC_PATH} (../shared/reference/ beside the clone)")
    return SPEC_PATH


def _postgres_engine() -> Iterator[Engine]:
    reason = postgres_reachable()
    if reason:
        missing(reason)
    schema = f"pw_test_{secrets.token_hex(4)}"
    admin = create_db_engine(POSTGRES_URL, pool_size=1)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_db_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database of each kind, fresh for the run (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "postwerk.db"
        sqlite_engine = create_db_engine(f"sqlite:///{path}")
        upgrade(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
    else:
        yield from _postgres_engine()
