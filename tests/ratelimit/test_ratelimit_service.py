"""The rate-limit policy service over a real unix socket, the way Postfix's smtpd talks to it at the end of a
message, on a real SQLite file and on PostgreSQL: counting per account and tier, every spelling of a login,
the answers for unknown accounts and broken requests, the sliding hour, persistence across a restart of the
service process, two mail nodes racing at the limit, pruning, and index probes only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, text

from postwerk.domain.rate_limits import RateLimitCatalogue, tier_id
from postwerk.domain.sending_rate import (
    CHECK_FAILED,
    UNKNOWN_ACCOUNT,
    WINDOW_SLOTS,
    SenderLogin,
    Window,
    over_limit_reply,
    slot_of,
)
from postwerk.ratelimit import service as service_module
from postwerk.ratelimit.service import CHECK_TIMEOUT, RateLimiter, RateLimitPolicy, default_executor
from postwerk.service import Context, delivery_boxes, mail_addresses, projects
from postwerk.service.access import ADMIN
from postwerk.store import repository
from postwerk.store.db import create_db_engine
from postwerk.store.repository import Database
from postwerk.store.sending_rate import (
    _INSERT_WINDOW,
    _PRUNE,
    _SENDER_WINDOW,
    _UPDATE_WINDOW,
    count_message,
    prune,
)
from postwerk.store.tables import delivery_boxes as delivery_box_table
from postwerk.store.tables import sending_windows

TIERS = [5, 10, 100]
DEFAULT = 10
PASSWORD = "a long secret"
NOW = 1_790_000_040.0  # on a minute boundary


@dataclass(frozen=True)
class Accounts:
    context: Context
    project_id: str
    domain: str
    mailbox: str  # at the 5 tier
    address: str
    roomy: str  # a mailbox at the default tier
    box: str  # a delivery box (the default tier)
    box_name: str


def _mailbox(context: Context, project_id: str, address: str) -> str:
    return mail_addresses.create(
        context,
        ADMIN,
        project_id,
        mail_addresses.NewAddress(
            address=address, mailbox=mail_addresses.NewMailbox(password=PASSWORD, quota_in_bytes=-1)
        ),
    )


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    context = Context(Database(engine), RateLimitCatalogue.from_values(TIERS, DEFAULT))
    project_id, short_id = projects.create_project(context, "rate limit test")
    domain = f"bücher-{short_id.removeprefix('p-')}.example"
    projects.add_domain(context, domain, project_id)
    address = f"Info@{domain}"
    mailbox = _mailbox(context, project_id, address)
    roomy = _mailbox(context, project_id, f"roomy@{domain}")
    box = delivery_boxes.create(context, ADMIN, project_id, "shop", PASSWORD)
    with context.db.write() as connection:
        repository.update_address(connection, mailbox, {"rate_limit_id": tier_id(5)})
        name = connection.execute(
            select(delivery_box_table.c.name).where(delivery_box_table.c.id == box)
        ).scalar_one()
    return Accounts(context, project_id, domain, mailbox, address, roomy, box, name)


def _end_of_message(login: str, recipients: int | str, *, state: str = "END-OF-MESSAGE") -> bytes:
    lines = [
        "request=smtpd_access_policy",
        f"protocol_state={state}",
        "protocol_name=ESMTP",
        "client_address=127.0.0.1",
        f"sasl_username={login}",
        "sasl_method=PLAIN",
        "sender=someone@example.org",
        "recipient=",
        f"recipient_count={recipients}",
        "",
        "",
    ]
    return "\n".join(lines).encode()


class Client:
    """One Postfix smtpd's connection: a request, its answer, and the next request."""

    def __init__(self, path: Path) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(30)
        self._socket.connect(str(path))
        self._buffer = b""

    def ask(self, payload: bytes) -> str:
        self._socket.sendall(payload)
        while b"\n\n" not in self._buffer:
            chunk = self._socket.recv(65536)
            assert chunk, f"connection closed after {self._buffer!r}"
            self._buffer += chunk
        reply, _, self._buffer = self._buffer.partition(b"\n\n")
        assert reply.startswith(b"action="), reply
        return reply.removeprefix(b"action=").decode()

    def send(self, login: str, recipients: int | str = 1) -> str:
        return self.ask(_end_of_message(login, recipients))

    def close(self) -> None:
        self._socket.close()


@contextlib.contextmanager
def serving(policy: RateLimitPolicy, path: Path) -> Iterator[Path]:
    """The policy on a unix socket, its event loop in a thread of its own."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def run() -> None:
        server = await asyncio.get_running_loop().create_unix_server(policy.protocol, path=str(path))
        async with server:
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield path
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def service(
    database: Database, path: Path, clock: Callable[[], float] = lambda: NOW, timeout: float = CHECK_TIMEOUT
) -> Iterator[Client]:
    limiter = RateLimiter(database, RateLimitCatalogue.from_values(TIERS, DEFAULT))
    executor = default_executor(database)
    with serving(RateLimitPolicy(limiter.check, executor, clock=clock, timeout=timeout), path):
        client = Client(path)
        try:
            yield client
        finally:
            client.close()
            if executor is not None:
                executor.shutdown()


def _window(engine: Engine, account: str) -> Window:
    with engine.connect() as connection:
        stored = connection.execute(
            select(sending_windows.c.counts).where(sending_windows.c.account_id == account)
        ).scalar()
    return Window() if stored is None else Window.decode(stored)


def test_a_mailbox_is_limited_by_its_tier_and_refusals_are_not_counted(
    engine: Engine, accounts: Accounts, tmp_path: Path
) -> None:
    with service(accounts.context.db, tmp_path / "rl.sock") as client:
        assert client.send(accounts.mailbox, 2) == "DUNNO"
        assert client.send(accounts.mailbox, 2) == "DUNNO"
        assert client.send(accounts.mailbox, 2) == over_limit_reply(5)
        assert client.send(accounts.mailbox, 1) == "DUNNO"
        reply = client.send(accounts.mailbox, 1)
        assert reply.startswith("450 4.7.1 sending rate limit reached: 5 messages per hour"), reply
        # Other accounts have windows of their own, at their own tier (the default for a delivery box).
        for _ in range(DEFAULT):
            assert client.send(accounts.box, 1) == "DUNNO"
        assert client.send(accounts.box, 1) == over_limit_reply(DEFAULT)
        assert client.send(accounts.roomy, DEFAULT) == "DUNNO"
    assert _window(engine, accounts.mailbox).total == 5
    assert _window(engine, accounts.box).total == DEFAULT


def test_every_spelling_of_a_login_counts_for_one_account(
    engine: Engine, accounts: Accounts, tmp_path: Path
) -> None:
    ascii_domain = accounts.domain.encode("idna").decode()
    with service(accounts.context.db, tmp_path / "rl.sock") as client:
        assert client.send(accounts.mailbox) == "DUNNO"
        assert client.send(accounts.mailbox.upper()) == "DUNNO"
        assert client.send(accounts.address) == "DUNNO"
        assert client.send(f"INFO@{ascii_domain}") == "DUNNO"
        assert client.send(f"info@{accounts.domain.upper()}") == "DUNNO"
        assert client.send(accounts.address) == over_limit_reply(5)
        assert client.send(accounts.box_name.upper(), DEFAULT) == "DUNNO"
        assert client.send(accounts.box, 1) == over_limit_reply(DEFAULT)
    assert _window(engine, accounts.mailbox).total == 5


def test_a_tier_change_counts_at_the_next_message(engine: Engine, accounts: Accounts, tmp_path: Path) -> None:
    with service(accounts.context.db, tmp_path / "rl.sock") as client:
        assert client.send(accounts.mailbox, 5) == "DUNNO"
        assert client.send(accounts.mailbox, 1) == over_limit_reply(5)
        with accounts.context.db.write() as connection:
            repository.update_address(connection, accounts.mailbox, {"rate_limit_id": tier_id(100)})
        assert client.send(accounts.mailbox, 1) == "DUNNO"


def test_unknown_accounts_and_odd_requests(engine: Engine, accounts: Accounts, tmp_path: Path) -> None:
    with service(accounts.context.db, tmp_path / "rl.sock") as client:
        for login in (
            "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
            f"nobody@{accounts.domain}",
            "no-such-box",
            "@",
        ):
            assert client.send(login) == UNKNOWN_ACCOUNT, login
        # A forwarding address is no account that logs in.
        mail_addresses.create(
            accounts.context,
            ADMIN,
            accounts.project_id,
            mail_addresses.NewAddress(
                address=f"fwd@{accounts.domain}", forward_addresses=["x@elsewhere.example"]
            ),
        )
        assert client.send(f"fwd@{accounts.domain}") == UNKNOWN_ACCOUNT
        # Not the end of a message, or not logged in: not this service's business.
        assert client.ask(_end_of_message(accounts.mailbox, 9, state="RCPT")) == "DUNNO"
        assert client.ask(_end_of_message("", 9)) == "DUNNO"
        assert client.ask(b"request=other\nsasl_username=x\n\n") == "DUNNO"
        # Postfix always sends recipient_count at the end of a message: without it, fail closed.
        for count in ("", "many", "-1"):
            assert client.send(accounts.mailbox, count) == CHECK_FAILED, count
        assert client.ask(b"no equals sign\n\n") == CHECK_FAILED
        assert client.ask(b"x=" + b"y" * 100_000 + b"\n\n") == CHECK_FAILED
        # A deleted account's login stops counting at once.
        mail_addresses.delete(accounts.context, ADMIN, accounts.roomy)
        assert client.send(accounts.roomy) == UNKNOWN_ACCOUNT
        assert client.send(accounts.mailbox, 6).startswith("550 5.7.1 ")
    assert _window(engine, accounts.mailbox) == Window()


def test_the_hour_slides(engine: Engine, accounts: Accounts, tmp_path: Path) -> None:
    now = [NOW]
    with service(accounts.context.db, tmp_path / "rl.sock", clock=lambda: now[0]) as client:
        assert client.send(accounts.mailbox, 3) == "DUNNO"
        now[0] = NOW + 30 * 60
        assert client.send(accounts.mailbox, 2) == "DUNNO"
        now[0] = NOW + 60 * 60 + 59
        assert client.send(accounts.mailbox, 1) == over_limit_reply(5)  # the first message still counts
        now[0] = NOW + 61 * 60
        assert client.send(accounts.mailbox, 3) == "DUNNO"  # it has left the window
        assert client.send(accounts.mailbox, 1) == over_limit_reply(5)
        now[0] = NOW + 91 * 60
        assert client.send(accounts.mailbox, 3) == over_limit_reply(5)  # the second has left, the third not
        assert client.send(accounts.mailbox, 2) == "DUNNO"
        now[0] = NOW + 200 * 60
        assert client.send(accounts.mailbox, 5) == "DUNNO"
    assert _window(engine, accounts.mailbox).total == 5


def test_failures_fail_closed(tmp_path: Path) -> None:
    def broken(login: str, recipients: int, now: float) -> str | None:
        raise RuntimeError("database gone")

    def slow(login: str, recipients: int, now: float) -> str | None:
        time.sleep(2)
        return None

    with ThreadPoolExecutor(2) as executor:
        with serving(RateLimitPolicy(broken, executor), tmp_path / "a.sock") as path:
            client = Client(path)
            assert client.send("someone") == CHECK_FAILED
            client.close()
        with serving(RateLimitPolicy(slow, executor, timeout=0.2), tmp_path / "b.sock") as path:
            client = Client(path)
            assert client.send("someone") == CHECK_FAILED
            client.close()


def test_a_check_that_waits_too_long_for_a_lock_fails_closed(
    engine: Engine, accounts: Accounts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer holds the lock (SQLite: the database's, e.g. the API's; PostgreSQL: the window's row)
    past the service's patience: 451 4.3.0 in time, and counting goes on once the lock is free."""
    monkeypatch.setattr(service_module, "SQLITE_LOCK_WAIT", 0.3)
    with service(accounts.context.db, tmp_path / "rl.sock", timeout=0.3) as client:
        assert client.send(accounts.roomy) == "DUNNO"
        with accounts.context.db.write() as connection:  # SQLite: BEGIN IMMEDIATE
            connection.execute(
                select(sending_windows.c.counts)
                .where(sending_windows.c.account_id == accounts.roomy)
                .with_for_update()
            )
            started = time.monotonic()
            assert client.send(accounts.roomy) == CHECK_FAILED
            assert time.monotonic() - started < 3
        assert client.send(accounts.roomy) == "DUNNO"


# --- across restarts and mail nodes ----------------------------------------------------------------------


def _database_url(engine: Engine) -> str:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url += f"?options=-csearch_path%3D{schema}"
    return url


@contextlib.contextmanager
def service_process(engine: Engine, folder: Path) -> Iterator[Client]:
    """`python -m postwerk.ratelimit` as the supervisor runs it."""
    path = folder / "services" / "ratelimit.sock"
    environment = {
        **os.environ,
        "POSTWERK_DATA_DIR": str(folder),
        "POSTWERK_DATABASE_URL": _database_url(engine),
        "POSTWERK_RATE_LIMIT_TIERS": str(TIERS),
        "POSTWERK_DEFAULT_RATE_LIMIT": str(DEFAULT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "postwerk.ratelimit", "--socket", str(path)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = Client(path)
                break
            except OSError:
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.05)
        yield client
        client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors


def test_counts_survive_a_restart_of_the_service(engine: Engine, accounts: Accounts, tmp_path: Path) -> None:
    with service_process(engine, tmp_path) as client:
        assert client.send(accounts.mailbox, 4) == "DUNNO"
    with service_process(engine, tmp_path) as client:
        assert client.send(accounts.mailbox, 2) == over_limit_reply(5)
        assert client.send(accounts.mailbox, 1) == "DUNNO"
        assert client.send(accounts.mailbox, 1) == over_limit_reply(5)


def _second_node(engine: Engine) -> Database:
    """Another mail node's connection pool on the same database."""
    url = _database_url(engine)
    return Database(create_db_engine(url, pool_size=8))


@pytest.mark.parametrize("first_message", [True, False])
def test_two_nodes_racing_at_the_limit_never_both_pass(
    engine: Engine, accounts: Accounts, tmp_path: Path, first_message: bool
) -> None:
    """Messages of one account, 40 at once on 20 connections of two services with their own connection
    pools (two mail nodes): exactly as many recipients pass as the tier allows."""
    other = _second_node(engine)
    already = 0 if first_message else 3
    if already:
        with service(accounts.context.db, tmp_path / "warm.sock") as client:
            assert client.send(accounts.roomy, already) == "DUNNO"
    replies: list[str] = []
    try:
        with (
            service(accounts.context.db, tmp_path / "a.sock") as _a,
            service(other, tmp_path / "b.sock") as _b,
        ):
            paths = [tmp_path / "a.sock", tmp_path / "b.sock"]
            barrier = threading.Barrier(20)
            lock = threading.Lock()

            def sender(index: int) -> None:
                client = Client(paths[index % 2])
                barrier.wait()
                for _ in range(2):
                    reply = client.send(accounts.roomy, 1)
                    with lock:
                        replies.append(reply)
                client.close()

            threads = [threading.Thread(target=sender, args=(index,)) for index in range(20)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
    finally:
        other.engine.dispose()
    assert len(replies) == 40
    assert replies.count("DUNNO") == DEFAULT - already, replies
    assert replies.count(over_limit_reply(DEFAULT)) == 40 - (DEFAULT - already)
    assert _window(engine, accounts.roomy).total == DEFAULT


def _count(connection: Connection, account: str, recipients: int, limit: int, slot: int) -> bool:
    counted = count_message(connection, SenderLogin("id", account), recipients, lambda _: limit, slot)
    assert counted is not None
    return counted.decision.accepted


def test_a_second_transaction_waits_for_the_window_lock(engine: Engine, accounts: Accounts) -> None:
    """PostgreSQL: the second message of an account is checked only once the first one's transaction has
    ended, whether the account's row exists yet (the insert waits) or not (the row lock waits)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: nothing to lock")
    database = accounts.context.db
    for account, limit in ((accounts.roomy, 1), (accounts.roomy, 2)):  # first: no row yet; then: a row
        results: list[bool] = []

        def second(account: str = account, limit: int = limit, results: list[bool] = results) -> None:
            with database.write() as connection:
                results.append(_count(connection, account, 1, limit, slot_of(NOW)))

        with database.write() as connection:
            assert _count(connection, account, 1, limit, slot_of(NOW))
            thread = threading.Thread(target=second)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive(), "the second check did not wait for the first"
        thread.join(10)
        assert results == [False]


def test_a_connection_the_database_closed_is_replaced(
    engine: Engine, accounts: Accounts, tmp_path: Path
) -> None:
    """The workers keep their connections; one that PostgreSQL closed (a restart) costs no refusal."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to close a connection")
    name = "pw-ratelimit-reconnect-test"
    database = Database(create_db_engine(f"{_database_url(engine)}&application_name={name}", pool_size=2))
    try:
        with service(database, tmp_path / "rl.sock") as client:
            assert client.send(accounts.roomy) == "DUNNO"
            with engine.connect() as connection:
                closed = connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"
                    ),
                    {"n": name},
                ).all()
            assert closed == [(True,)]
            assert client.send(accounts.roomy) == "DUNNO"
    finally:
        database.engine.dispose()
    assert _window(engine, accounts.roomy).total == 2


def test_windows_that_hold_nothing_are_pruned(engine: Engine, accounts: Accounts) -> None:
    database = accounts.context.db
    base = slot_of(NOW) + 30 * 24 * 60  # after every other test's counts: those are pruned along
    with database.write() as connection:
        assert _count(connection, accounts.mailbox, 1, 5, base)
        assert _count(connection, accounts.roomy, 1, 5, base + 30)
    with database.write() as connection:
        prune(connection, base + WINDOW_SLOTS)
    assert _window(engine, accounts.mailbox).total == 1
    with database.write() as connection:
        assert prune(connection, base + WINDOW_SLOTS + 1) == 1
    assert _window(engine, accounts.mailbox) == Window()
    assert _window(engine, accounts.roomy).total == 1


TABLES = ("mail_addresses", "delivery_boxes", "sending_windows")


def test_each_statement_is_an_index_probe(engine: Engine) -> None:
    values = {"key": "x", "account": "x", "new_counts": "1:1", "newest": 1, "oldest": 1}
    statements = [
        *_SENDER_WINDOW.values(),
        _UPDATE_WINDOW,
        _INSERT_WINDOW[engine.dialect.name],
    ]
    with engine.connect() as connection:
        for statement in [*statements, _PRUNE]:
            compiled = statement.compile(engine)
            query = str(compiled)
            parameters: Any = (
                tuple(values[name] for name in compiled.positiontup or ())
                if engine.dialect.name == "sqlite"
                else {name: values[name] for name in compiled.params}
            )
            if engine.dialect.name == "sqlite":
                rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", parameters)
                plan = " ".join(str(row[-1]) for row in rows)
                # `SCAN account` reads the one or two rows the account's index probes found.
                assert not any(f"SCAN {table}" in plan for table in TABLES), (query, plan)
            else:
                connection.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: what can the plan be?
                plan = " ".join(
                    str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {query}", parameters)
                )
                assert "Seq Scan" not in plan, (query, plan)
