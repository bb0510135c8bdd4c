"""The store side of the sending rate limits (`postwerk.domain.sending_rate`): the account behind a SASL login
name with its window of counts (table `sending_windows`), checked and counted.

`count_message` runs inside one write transaction and costs two statements, each of unique-index probes
only: the account (by id, address key or delivery box name) together with its window row, locked; then the
window's update (or, for an account's first message, its insert). Concurrency: on PostgreSQL the window
row is read `FOR UPDATE`, so two messages of one account (on any mail node) are checked one after the
other, the second seeing the first's count; the first message of an account inserts its row with
`ON CONFLICT DO NOTHING`, and should another transaction have inserted it meanwhile (this insert then waits
for that one's end), the row is read again, locked, and checked anew. On SQLite the write transaction holds
the database's write lock from its start (BEGIN IMMEDIATE, `store.db`): one writer at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, literal_column, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from postwerk.domain.sending_rate import (
    WINDOW_SLOTS,
    Decision,
    Sender,
    SenderLogin,
    Window,
    decide,
)
from postwerk.store.tables import delivery_boxes, mail_addresses, sending_windows

log = logging.getLogger("postwerk.store.sending_rate")

_a = mail_addresses.c
_b = delivery_boxes.c
_w = sending_windows.c

# A delivery box has no tier of its own: the installation's default.
_NO_TIER: Any = literal_column("NULL").label("rate_limit_id")
# The account behind a SASL login name, by the kind of name (`domain.sending_rate.SenderLogin`): an account
# id (Postwerk's passdb answers the id as the user: a mailbox or a delivery box, two primary-key probes), an
# address's lookup key, or a delivery box's name (unique-index probes).
_SENDERS: dict[str, Any] = {
    "id": union_all(
        select(_a.id, _a.rate_limit_id).where(_a.id == bindparam("key"), _a.is_mailbox),
        select(_b.id, _NO_TIER).where(_b.id == bindparam("key")),
    ),
    "address": select(_a.id, _a.rate_limit_id).where(_a.lookup_key == bindparam("key"), _a.is_mailbox),
    "name": select(_b.id, _NO_TIER).where(_b.name == bindparam("key")),
}


def _with_window(sender: Any) -> Any:
    """The account and its window in one statement; the window's row is locked (PostgreSQL) until the
    transaction ends, and read in its newest committed version once the lock is had."""
    account = sender.subquery("account")
    window = select(_w.counts).where(_w.account_id == account.c.id).with_for_update().scalar_subquery()
    return select(account.c.id, account.c.rate_limit_id, window.label("counts"))


_SENDER_WINDOW: dict[str, Any] = {kind: _with_window(sender) for kind, sender in _SENDERS.items()}
_UPDATE_WINDOW = (
    update(sending_windows)
    .where(_w.account_id == bindparam("account"))
    .values(counts=bindparam("new_counts"), newest_slot=bindparam("newest"))
)
_NEW_WINDOW_VALUES: dict[str, Any] = {
    "account_id": bindparam("account"),
    "counts": bindparam("new_counts"),
    "newest_slot": bindparam("newest"),
}
_INSERT_WINDOW = {
    "postgresql": postgresql.insert(sending_windows)
    .values(_NEW_WINDOW_VALUES)
    .on_conflict_do_nothing()
    .returning(_w.account_id),
    "sqlite": sqlite.insert(sending_windows)
    .values(_NEW_WINDOW_VALUES)
    .on_conflict_do_nothing()
    .returning(_w.account_id),
}
_PRUNE = delete(sending_windows).where(_w.newest_slot < bindparam("oldest"))


def _window(account_id: str, stored: str | None) -> Window:
    if stored is None:
        return Window()
    try:
        return Window.decode(stored)
    except ValueError:
        # Never written by Postwerk: counted afresh rather than refusing the account's mail for good.
        log.warning("the sending window of account %s was unreadable: counting afresh", account_id)
        return Window()


@dataclass(frozen=True)
class Counted:
    sender: Sender
    decision: Decision


def count_message(
    connection: Connection,
    login: SenderLogin,
    recipients: int,
    limit_of: Callable[[Sender], int],
    now_slot: int,
) -> Counted | None:
    """Check a message to `recipients` recipients of the account behind `login` against its window (the
    account's limit from `limit_of`) and, if it may go, count it; None when there is no such account. Call
    inside a write transaction; a refused message writes nothing."""
    insert = _INSERT_WINDOW[connection.dialect.name]
    for _ in range(2):
        row = connection.execute(_SENDER_WINDOW[login.kind], {"key": login.key}).first()
        if row is None:
            return None
        sender = Sender(str(row.id), row.rate_limit_id)
        window = _window(sender.account_id, row.counts)  # `counts` is never NULL: NULL is "no row yet"
        decision = decide(window, recipients, limit_of(sender), now_slot)
        if not decision.accepted:
            return Counted(sender, decision)
        values = {
            "account": sender.account_id,
            "new_counts": decision.window.encode(),
            "newest": decision.window.newest_slot,
        }
        if row.counts is not None:
            connection.execute(_UPDATE_WINDOW, values)
            return Counted(sender, decision)
        if connection.execute(insert, values).first() is not None:  # no row back: another one's was there
            return Counted(sender, decision)
        # Another transaction made the account's row after this one looked (PostgreSQL: it waited for that
        # one's commit): read it again, locked this time.
    raise RuntimeError(f"the sending window of account {sender.account_id} could not be locked")


def prune(connection: Connection, now_slot: int) -> int:
    """Remove the windows whose every count has left the window (by the index on `newest_slot`)."""
    return connection.execute(_PRUNE, {"oldest": now_slot - WINDOW_SLOTS}).rowcount
