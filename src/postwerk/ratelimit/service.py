"""The rate-limit policy service: answers Postfix's `check_policy_service` at the end of each message on the
submission services (`smtpd_end_of_data_restrictions`; Postfix sends `protocol_state=END-OF-MESSAGE`, the
login as `sasl_username` and the accepted recipients as `recipient_count`).

Answers (`postwerk.domain.sending_rate` words them):
- `DUNNO`: the message may go, and its recipients are counted (committed before the answer is sent);
- `450 4.7.1 sending rate limit reached: N messages per hour ...`: over the account's tier, not counted;
- `550 5.7.1 ...`: more recipients in one message than the tier allows in an hour;
- `451 4.7.1 sending account not found ...`: a login the store no longer knows (deleted after login);
- `451 4.3.0 sending rate limit check failed ...`: anything else that goes wrong (the database unreachable,
  slower than `CHECK_TIMEOUT`, a request that makes no sense): fail closed. Postfix itself answers
  `451 4.3.0 ... service unavailable` when it cannot reach this service (its `default_action`, main.cf).
- `DUNNO` for requests that are not the end of a message of a logged-in client: the limits are per account,
  and the submission services refuse clients that did not log in at RCPT already.

The check is blocking database work (`RateLimiter.check`, one short write transaction). On PostgreSQL it
runs in `WORKERS` threads (messages of different accounts are checked at once; those of one account wait for
the row lock of its window, on every mail node alike), bounded by `CHECK_TIMEOUT`. On SQLite it runs on the
event loop itself, as the policy service's reads do: the database has one writer anyway, so a thread would
add only its hand-offs (about 100 µs of CPU a message, a third of the cost, `bench/ratelimit_policy.py`);
the service's connections wait at most `SQLITE_LOCK_WAIT` for another writer (the API), then the check
fails closed.

Counting errs towards the limit, never past it: a check that ends after its answer was given up (451 after
`CHECK_TIMEOUT`) may still have counted its message; and Postfix asks before the submission milter's verdict,
so a message the milter then refuses (a header `From:` the login may not use) has been counted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.domain.sending_rate import (
    CHECK_FAILED,
    UNKNOWN_ACCOUNT,
    Sender,
    limit_for,
    recipient_count,
    sender_login,
    slot_of,
)
from postwerk.policy.protocol import PolicyProtocol, Request
from postwerk.store.db import WRITE_OPTION
from postwerk.store.repository import Database
from postwerk.store.sending_rate import count_message, prune
from postwerk.unix_sockets import serve_unix

log = logging.getLogger("postwerk.ratelimit")

DUNNO = "DUNNO"
END_OF_MESSAGE = "END-OF-MESSAGE"
CHECK_TIMEOUT = 5.0  # well within Postfix's timeout=10s (main.cf), so the answer is ours, not its default
PRUNE_INTERVAL = 600.0
WORKERS = 8  # threads (and database connections) on PostgreSQL
SQLITE_LOCK_WAIT = 4.0  # seconds an inline check may wait for SQLite's write lock (Postfix waits 10)

T = TypeVar("T")
# (SASL login name, recipients, Unix time) -> the refusal, or None when the message may go (and was counted).
Check = Callable[[str, int, float], str | None]


class RateLimiter:
    """The blocking check against the store: the account behind the login, its tier and its window, checked
    and counted in one short write transaction (`store.sending_rate.count_message`: two statements).

    Each worker thread keeps its database connection: no pool checkout per message, and so no ping (three
    round trips on PostgreSQL) and no reset. A connection that fails is dropped; when the database had
    closed it (a restart), the check is retried once on a new one."""

    def __init__(self, database: Database, catalogue: RateLimitCatalogue) -> None:
        self.database = database
        self.catalogue = catalogue
        self._local = threading.local()

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            connection = self.database.engine.connect().execution_options(**{WRITE_OPTION: True})
            if connection.dialect.name == "sqlite":
                # Checks on SQLite run on the event loop: a lock held elsewhere may not stall it for long.
                cursor = connection.connection.cursor()  # the driver's: no transaction begun
                cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT * 1000)}")
                cursor.close()
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection: Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def _limit(self, sender: Sender) -> int:
        return limit_for(sender, self.catalogue)

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        for attempt in (1, 2):
            connection = self._connection()
            try:
                with connection.begin():
                    return work(connection)
            except DBAPIError as error:
                self._drop_connection()
                if attempt == 2 or not error.connection_invalidated:
                    raise
            except Exception:
                self._drop_connection()
                raise
        raise AssertionError("unreachable")

    def check(self, login: str, recipients: int, now: float) -> str | None:
        parsed = sender_login(login)
        if parsed is None:
            log.info("refused at end of data: the login %r names no account", login[:100])
            return UNKNOWN_ACCOUNT
        slot = slot_of(now)
        counted = self._in_transaction(
            lambda connection: count_message(connection, parsed, recipients, self._limit, slot)
        )
        if counted is None:
            log.info("refused at end of data: no account %r (deleted after login?)", login[:100])
            return UNKNOWN_ACCOUNT
        decision = counted.decision
        if not decision.accepted:
            log.info(
                "refused at end of data: account %s over its sending rate limit (%d counted, %d more, "
                "limit %d per hour)",
                counted.sender.account_id,
                decision.window.total,
                recipients,
                decision.limit,
            )
        return decision.reply

    def prune(self, now: float) -> int:
        slot = slot_of(now)
        return self._in_transaction(lambda connection: prune(connection, slot))


def default_executor(database: Database) -> ThreadPoolExecutor | None:
    """Worker threads for the checks on PostgreSQL; None (on the event loop) on SQLite."""
    if database.engine.dialect.name == "sqlite":
        return None
    return ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="ratelimit")


class RateLimitPolicy:
    """Postfix's side: the policy delegation protocol (`postwerk.policy.protocol`) on each connection."""

    def __init__(
        self,
        check: Check,
        executor: Executor | None,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = CHECK_TIMEOUT,
    ) -> None:
        self._check = check
        self._executor = executor
        self._clock = clock
        self._timeout = timeout

    async def decide(self, request: Request) -> str:
        if request.malformed:
            log.error("a request that is no policy request: answering %s", CHECK_FAILED)
            return CHECK_FAILED
        if request.get("request") != "smtpd_access_policy":
            return DUNNO
        if request.get("protocol_state").upper() != END_OF_MESSAGE:
            return DUNNO
        login = request.get("sasl_username")
        if not login:
            return DUNNO
        recipients = recipient_count(request.get("recipient_count"))
        if recipients is None:
            log.error("no recipient_count at the end of a message: answering %s", CHECK_FAILED)
            return CHECK_FAILED
        try:
            if self._executor is None:
                refusal = self._check(login, recipients, self._clock())
            else:
                loop = asyncio.get_running_loop()
                refusal = await asyncio.wait_for(
                    loop.run_in_executor(self._executor, self._check, login, recipients, self._clock()),
                    timeout=self._timeout,
                )
        except Exception as error:  # fail closed: see the module's note
            log.error("rate limit check failed (%s: %s): answering 451", type(error).__name__, error)
            return CHECK_FAILED
        return DUNNO if refusal is None else refusal

    def protocol(self) -> PolicyProtocol:
        """A connection of Postfix's (for `serve_unix`)."""
        return PolicyProtocol(self.decide)

    async def prune_forever(self, limiter: RateLimiter, interval: float = PRUNE_INTERVAL) -> None:
        """Remove windows that hold nothing any more, now and every `interval` seconds (on every mail node:
        a second node's prune finds nothing left to do); in a thread, also on SQLite."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                removed = await loop.run_in_executor(self._executor, limiter.prune, self._clock())
                if removed:
                    log.info("pruned %d sending windows that held nothing", removed)
            except Exception as error:  # the database away for a while: try again next time
                log.warning("pruning sending windows failed (%s: %s)", type(error).__name__, error)
            await asyncio.sleep(interval)


async def serve(socket: Path, group: str | None, limiter: RateLimiter) -> None:
    """Serve the policy on `socket` until SIGTERM or SIGINT, pruning on the side."""
    executor = default_executor(limiter.database)
    policy = RateLimitPolicy(limiter.check, executor)
    pruner = asyncio.create_task(policy.prune_forever(limiter))
    try:
        await serve_unix(socket, protocol=policy.protocol, group=group, mode=0o660, log=log)
    finally:
        pruner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruner
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
