"""Mailbox usage, kept by Dovecot's quota plugin in Postwerk's usage dictionary, written into the store.

Why this mechanism: Dovecot's `quota` plugin with its `dict` backend keeps each mailbox's usage in a
dictionary: every delivery, expunge or APPEND sends an increment (`A<id> priv/quota/storage <bytes>`), and
whenever Dovecot has no trustworthy value (a lookup not found, an increment answered "not found") it counts
the mailbox from its indexes and sends the totals (`S`). That dictionary is this server: Dovecot speaks its
dict protocol (`proxy:` dict) over a unix socket in the data folder. So usage reaches the store when it
changes, without polling (`doveadm quota get` for 100,000 mailboxes every few seconds would cost more than
all the mail), and a delivery pays one small message, not a count of the mailbox: the `quota_clone` plugin
that fed this server before counted every folder twice per delivery, 1 ms of the LDA's CPU per message
(bench/smtp_inbound.py). Every write goes through `repository.update_usage`, which stores the address's
API document in the same statement, so `GET /v2/mail-addresses/{id}` shows the new usage at once; Dovecot
writing an SQL table itself would bypass that document.

Nothing is lost: Dovecot's commit is answered only once its change is stored (the commits of a short window
share one transaction: a burst of deliveries costs a few writes, not one each). If the store
fails, the commit is answered "not found": Dovecot then counts that mailbox and sends the totals, which are
kept until they are stored. Lookups are always "not found" for the same reason: whenever Dovecot wants the
value (an IMAP GETQUOTAROOT), it counts, and the store is corrected by what it finds.

Only `priv/quota/storage` is used (`priv/quota/messages` is ignored: the API shows bytes only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from postwerk.domain.text import plain_decimal
from postwerk.dovecot_dict import NOT_FOUND, DictProtocol, unescape
from postwerk.unix_sockets import Reply

log = logging.getLogger("postwerk.usage")

STORAGE_KEY = "priv/quota/storage"
# How long a commit waits for others to share its write, unless enough are waiting (BATCH_COMMITS): an LDA
# waits up to this much longer for its answer (it has delivered already, and holds nothing but its
# process), and a burst of deliveries costs one write per window, not one each. A write's own cost is most
# of it up to about twenty mailboxes (bench/RESULTS.md, session 9: per delivery, PostgreSQL's backend 570
# us alone, 200 in fives, 117 in twenties; this service's client side 479, 109, 47), so the window is long
# enough to gather that many at the rates where CPU is short (0.05 s before: two or three a write at 50
# messages a second). The cap ends the wait once a write is as large as pays: at high rates the LDAs
# waiting would otherwise pile up (a window's worth of deliveries, against pipe(8)'s process limit).
GATHER_WINDOW = 0.25
BATCH_COMMITS = 32
RETRY_DELAY = 1.0
MAX_USER_LENGTH = 255
MAX_TRANSACTIONS = 64  # per connection; Dovecot uses one or two at a time
MAX_DIGITS = 19


@dataclass
class UsageChange:
    """What to do to one mailbox's stored usage: set it to `total` (counted by Dovecot) if that is known,
    then add `delta` (increments since)."""

    total: int | None = None
    delta: int = 0

    def then(self, later: UsageChange) -> UsageChange:
        if later.total is not None:
            return UsageChange(later.total, later.delta)
        return UsageChange(self.total, self.delta + later.delta)


Changes = Mapping[str, UsageChange]
Writer = Callable[[Changes], None]  # blocking: stores a batch, raises if it could not


def _parse_integer(value: str) -> int | None:
    magnitude = plain_decimal(value.removeprefix("-"), MAX_DIGITS)
    if magnitude is None:
        return None
    return -magnitude if value.startswith("-") else magnitude


class UsageCollector:
    """Pending usage changes per mailbox, stored one transaction at a time by `run_writer`; `stored()` tells
    a committing Dovecot when (and whether) everything it sent so far is in the store."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._pending: dict[str, UsageChange] = {}
        self._waiting: list[asyncio.Future[bool]] = []
        self._wakeup = asyncio.Event()
        self._batch_full = asyncio.Event()

    def change(self, mailbox_id: str, change: UsageChange) -> None:
        earlier = self._pending.get(mailbox_id)
        self._pending[mailbox_id] = change if earlier is None else earlier.then(change)

    def stored(self) -> asyncio.Future[bool]:
        """Resolves to True once every change made so far is stored, to False if that write failed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._wakeup.set()
        if len(self._waiting) >= BATCH_COMMITS:
            self._batch_full.set()
        return future

    async def write(self) -> bool:
        batch, self._pending = self._pending, {}
        waiting, self._waiting = self._waiting, []
        stored = True
        if batch:
            try:
                await asyncio.to_thread(self._writer, batch)
            except Exception as error:
                stored = False
                log.error("storing mailbox usage failed (%s: %s)", type(error).__name__, error)
                # Totals are kept and tried again (newer changes go on top of them); increments are not: their
                # commits are answered "not found", and Dovecot counts those mailboxes and sends totals.
                for mailbox_id, change in batch.items():
                    if change.total is not None:
                        kept = UsageChange(change.total)
                        later = self._pending.get(mailbox_id)
                        self._pending[mailbox_id] = kept if later is None else kept.then(later)
        for future in waiting:
            if not future.done():
                future.set_result(stored)
        return stored

    async def run_writer(self) -> None:
        while True:
            await self._wakeup.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GATHER_WINDOW):
                    await self._batch_full.wait()
            self._wakeup.clear()
            self._batch_full.clear()
            if not await self.write():
                await asyncio.sleep(RETRY_DELAY)
                self._wakeup.set()


class _Transaction:
    def __init__(self, user: str | None) -> None:
        self.user = user
        self.change: UsageChange | None = None


def _user(text: str) -> str | None:
    user = unescape(text)
    return user if 0 < len(user) <= MAX_USER_LENGTH else None


async def _commit_reply(stored: asyncio.Future[bool], reply: str, transaction_id: str) -> str:
    found = await stored
    return f"{reply}{'O' if found else 'N'}{transaction_id}\n"


class DictConnection:
    """One Dovecot dict client (protocol 3.x of Dovecot 2.3): `H3 2 <type> <user> <dict>`, then
    transactions `B<id> <user>`, `A<id> <key> <diff>` (increment), `U<id> <key>`, `S<id> <key> <value>`...,
    `C<id>` (answered `O<id>` or `N<id>`) or `D<id>` (answered `AO<id>` or `AN<id>`). The user (the mailbox
    id: Dovecot's user names are mailbox ids) comes with BEGIN; Dovecot 2.3 leaves it empty in HELLO.
    Anything else is answered as the protocol wants (lookups: not found) or ignored."""

    def __init__(self, collector: UsageCollector) -> None:
        self._collector = collector
        self._user: str | None = None
        self._transactions: dict[str, _Transaction] = {}

    def line(self, line: str) -> Reply:
        """Handle one line; returns the reply to send, if any (a commit's when it is stored)."""
        if not line:
            return None
        command, rest = line[0], line[1:]
        fields = rest.split("\t")
        if command == "H":
            # <major> <minor> <value type> <user> <dict name>
            self._user = _user(fields[3]) if len(fields) > 3 else None
            return None
        if command == "L":
            return NOT_FOUND
        if command == "I":
            return "\n"  # an empty iteration
        transaction_id = fields[0]
        if command == "B":
            if len(self._transactions) < MAX_TRANSACTIONS:
                user = _user(fields[1]) if len(fields) > 1 else None
                self._transactions[transaction_id] = _Transaction(user or self._user)
            return None
        if command in {"S", "A"} and len(fields) >= 3:
            transaction = self._transactions.get(transaction_id)
            value = _parse_integer(unescape(fields[2]))
            if transaction is not None and value is not None and unescape(fields[1]) == STORAGE_KEY:
                change = UsageChange(value) if command == "S" else UsageChange(delta=value)
                previous = transaction.change
                transaction.change = change if previous is None else previous.then(change)
            return None
        if command in {"C", "D"}:
            reply = "A" if command == "D" else ""
            transaction = self._transactions.pop(transaction_id, None)
            if transaction is None or transaction.change is None or transaction.user is None:
                return f"{reply}O{transaction_id}\n"
            self._collector.change(transaction.user, transaction.change)
            return _commit_reply(self._collector.stored(), reply, transaction_id)
        if command == "R":
            self._transactions.pop(transaction_id, None)
        return None  # U(nset: a count's totals follow), T(imestamp), V(hide log values): nothing to keep

    def protocol(self) -> DictProtocol:
        return DictProtocol(self.line)


def protocol_factory(collector: UsageCollector) -> Callable[[], DictProtocol]:
    """A protocol per connection of Dovecot's, for `loop.create_unix_server`."""
    return lambda: DictConnection(collector).protocol()
