"""Shared test setup: the two databases, the official spec, and the CI rule that neither may be missing."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from postwerk.store.db import create_db_engine
from postwerk.store.scratch import scratch_postgres, scratch_sqlite

REPO = Path(__file__).resolve().parents[1]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
SPEC_PATH = SHARED_REFERENCE / "mittwald-openapi-mail.json"
POSTGRES_URL = os.environ.get("POSTWERK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unpinged_engine(engine: Engine, application_name: str) -> Engine:
    """Another pool on `engine`'s PostgreSQL schema, without the ping on checkout (as the mail services and
    the API's hot reads use), its connections named for `pg_stat_activity` (a test closes them there)."""
    with engine.connect() as connection:
        search_path = connection.execute(text("SHOW search_path")).scalar_one()
    return create_db_engine(
        engine.url.render_as_string(hide_password=False),
        pool_size=1,
        connect_args={"options": f"-csearch_path={search_path}", "application_name": application_name},
        pre_ping=False,
    )


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


@contextlib.contextmanager
def scratch_database(kind: str, folder: Path, prefix: str) -> Iterator[Engine]:
    """A fresh, migrated database of `kind` ("sqlite": a file in `folder`; "postgres": a schema of its own
    named with `prefix`), removed afterwards."""
    if kind == "sqlite":
        with scratch_sqlite(folder) as sqlite_engine:
            yield sqlite_engine
        return
    reason = postgres_reachable()
    if reason:
        missing(reason)
    with scratch_postgres(POSTGRES_URL, prefix=prefix) as postgres_engine:
        yield postgres_engine


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database of each kind, fresh for the run (PostgreSQL: a schema of its own)."""
    with scratch_database(request.param, tmp_path_factory.mktemp("sqlite"), "pw_test") as database:
        yield database


# --- no secret in any log line ---------------------------------------------------------------------------

PASSWORDS_SENT: set[str] = set()
_LOG_LINES: list[str] = []


class _CollectEverything(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a record that cannot be formatted cannot leak either
            _LOG_LINES.append(self.format(record))


def remember_passwords(body: bytes) -> None:
    """Collect every `password` value of a JSON request body (called by the test server for all traffic)."""
    try:
        data = json.loads(body)
    except ValueError:
        return
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "password" and isinstance(value, str) and len(value) >= 8:
                    PASSWORDS_SENT.add(value)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


@pytest.fixture(scope="session", autouse=True)
def no_password_in_any_log_line() -> Iterator[None]:
    """The whole suite runs with logging at DEBUG; afterwards no password it sent may appear in any line."""
    handler = _CollectEverything(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    root.setLevel(previous)
    leaked = sorted(p for p in PASSWORDS_SENT if any(p in line for line in _LOG_LINES))
    assert not leaked, f"{len(leaked)} password(s) appeared in log lines"


def unix_exchange(
    path: Path,
    payload: bytes | Sequence[bytes],
    *,
    until: Callable[[bytes], bool] = lambda received: False,
    end_sending: bool = False,
    timeout: float = 10.0,
) -> bytes:
    """A client of a unix-socket service: sends `payload` (or its pieces one after another), optionally
    ends its sending half, and reads until `until(received)` holds or the server closes (a silent server
    fails the test by the timeout)."""
    pieces = [payload] if isinstance(payload, bytes) else list(payload)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(str(path))
        for piece in pieces:
            client.sendall(piece)
        if end_sending:
            client.shutdown(socket.SHUT_WR)
        received = b""
        while not until(received) and (chunk := client.recv(65536)):
            received += chunk
    return received
