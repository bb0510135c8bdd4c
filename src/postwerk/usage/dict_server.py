"""Mailbox usage, pushed by Dovecot, written into the store.

Why this mechanism: Dovecot's `quota` plugin (`count` backend: the usage is the sum of the messages' sizes
that Dovecot's indexes keep anyway, nothing is rescanned) and its `quota_clone` plugin, which after every
change of a mailbox (a delivery by the LDA, an expunge or an APPEND over IMAP) writes the new totals into a
dictionary. That dictionary is this server: Dovecot speaks its dict protocol (`proxy:` dict) over a unix
socket in the data folder. So usage reaches the store when it changes, without polling: polling
`doveadm quota get` for 100,000 mailboxes every few seconds would cost more than all the mail, and letting
Dovecot write an SQL table itself would bypass the address's stored API document. Every write goes through
`repository.update_address` (via `store.mail_lookups.record_usage`), which stores that document in the same
transaction, so `GET /v2/mail-addresses/{id}` shows the new usage at once.

Timing: quota_clone flushes when the mailbox is closed (the LDA closes it right after a delivery) or 10 s
after a change in a mailbox a client keeps open (an IMAP expunge). Reports are coalesced per mailbox (the
latest wins) and written in one transaction every FLUSH_INTERVAL, so a burst of deliveries costs a few
writes, not one each. Dovecot gets its answer before the write: a report lost to a crash of Postwerk is
corrected by the next change of that mailbox.

Only `priv/quota/storage` is used (`priv/quota/messages` is ignored: the API shows bytes only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from postwerk.dovecot_dict import NOT_FOUND, serve_connection, unescape

log = logging.getLogger("postwerk.usage")

STORAGE_KEY = "priv/quota/storage"
FLUSH_INTERVAL = 0.2
MAX_USER_LENGTH = 255
MAX_TRANSACTIONS = 64  # per connection; Dovecot uses one or two at a time

Usage = Mapping[str, tuple[int, datetime]]
Writer = Callable[[Usage], None]  # blocking: writes a batch into the store


def _parse_bytes(value: str) -> int | None:
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    return int(value)


class UsageCollector:
    """Pending usage per mailbox, written in batches by `run_flusher`."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._pending: dict[str, tuple[int, datetime]] = {}
        self._wakeup = asyncio.Event()

    def report(self, mailbox_id: str, usage_bytes: int) -> None:
        self._pending[mailbox_id] = (usage_bytes, datetime.now(UTC))
        self._wakeup.set()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await asyncio.to_thread(self._writer, batch)
        except Exception as error:
            log.error("storing mailbox usage failed (%s: %s); retrying", type(error).__name__, error)
            # Newer reports that came in meanwhile win over the batch that failed.
            self._pending = {**batch, **self._pending}
            await asyncio.sleep(1.0)
            self._wakeup.set()

    async def run_flusher(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(FLUSH_INTERVAL)  # gather the reports of a burst into one transaction
            await self.flush()


class _Transaction:
    def __init__(self, user: str | None) -> None:
        self.user = user
        self.values: dict[str, str] = {}


def _user(text: str) -> str | None:
    user = unescape(text)
    return user if 0 < len(user) <= MAX_USER_LENGTH else None


class DictConnection:
    """One Dovecot dict client (protocol 3.x of Dovecot 2.3): `H3 2 <type> <user> <dict>`, then
    transactions `B<id> <user>`, `S<id> <key> <value>`..., `C<id>` (answered `O<id>`) or `D<id>` (answered
    `AO<id>`). The user (the mailbox id: Dovecot's user names are mailbox ids) comes with BEGIN; Dovecot 2.3
    leaves it empty in HELLO. Anything else is answered as the protocol wants (lookups: not found) or
    ignored."""

    def __init__(self, collector: UsageCollector) -> None:
        self._collector = collector
        self._user: str | None = None
        self._transactions: dict[str, _Transaction] = {}

    def line(self, line: str) -> str | None:
        """Handle one line; returns the reply to send, if any."""
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
        if command == "S" and len(fields) >= 3:
            transaction = self._transactions.get(transaction_id)
            if transaction is not None:
                transaction.values[unescape(fields[1])] = unescape(fields[2])
            return None
        if command in {"C", "D"}:
            transaction = self._transactions.pop(transaction_id, None)
            if transaction is not None:
                self._commit(transaction)
            return ("A" if command == "D" else "") + f"O{transaction_id}\n"
        if command == "R":
            self._transactions.pop(transaction_id, None)
        return None  # U(nset), A(tomic increment), T(imestamp), V(hide log values): nothing to keep

    def _commit(self, transaction: _Transaction) -> None:
        usage = _parse_bytes(transaction.values.get(STORAGE_KEY, ""))
        if usage is not None and transaction.user is not None:
            self._collector.report(transaction.user, usage)


async def handle(
    collector: UsageCollector, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    connection = DictConnection(collector)

    async def respond(line: str) -> str | None:
        return connection.line(line)

    await serve_connection(reader, writer, respond)
