"""What Postwerk's own mail services (the policy service, the usage sync) read from and write to the store.

Kept apart from `repository` (the API's questions); writes of an address still go through
`repository.update_address`, which stores the address's API document in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, literal_column, null, select, union_all

from postwerk.domain.delivery_quota import Destination, Found, Mailbox
from postwerk.store import repository
from postwerk.store.tables import domains, forward_targets, mail_addresses

_a = mail_addresses.c
_f = forward_targets.c


def _destination_columns(catch_all_domain: Any) -> list[Any]:
    return [
        _a.lookup_key.label("key"),
        catch_all_domain.label("catch_all_domain"),
        _a.id,
        _a.is_mailbox,
        _a.quota_bytes,
        _a.usage_bytes,
        _a.receiving_disabled,
        _f.target_route,
    ]


_joined = mail_addresses.outerjoin(forward_targets, _f.address_id == _a.id)
# Written bare, as in the partial index's predicate: SQLite uses that index only for the very same term
# (SQLAlchemy would write `is_catch_all = 1`, which it takes for another condition).
_IS_CATCH_ALL: ColumnElement[Any] = literal_column("mail_addresses.is_catch_all")
# One statement, each half an index probe per key: addresses by their unique key, and the catch-all of a
# domain by the domain's unique name and the partial index on the catch-all (one per domain). Forward
# targets come along by their primary key (address_id, position).
_DESTINATIONS = union_all(
    select(*_destination_columns(null()))
    .select_from(_joined)
    .where(_a.lookup_key.in_(bindparam("keys", expanding=True))),
    select(*_destination_columns(domains.c.name_ascii))
    .select_from(
        domains.join(mail_addresses, and_(_a.domain_id == domains.c.id, _IS_CATCH_ALL)).outerjoin(
            forward_targets, _f.address_id == _a.id
        )
    )
    .where(domains.c.name_ascii.in_(bindparam("domains", expanding=True))),
)


def find_destinations(connection: Connection, keys: Sequence[str], domain_names: Sequence[str]) -> Found:
    """Hosted addresses by lookup key and the catch-alls of the given A-label domains, with their mailbox
    usage and forward targets (`domain.delivery_quota.Lookup`)."""
    if not keys and not domain_names:
        return Found()
    rows = connection.execute(_DESTINATIONS, {"keys": list(keys), "domains": list(domain_names)}).all()
    forwards: dict[tuple[str, str | None], list[str]] = {}
    first: dict[tuple[str, str | None], Any] = {}
    for row in rows:
        slot = (row.key, row.catch_all_domain)
        first.setdefault(slot, row)
        targets = forwards.setdefault(slot, [])
        if row.target_route is not None:
            targets.append(row.target_route)
    addresses: dict[str, Destination] = {}
    catch_alls: dict[str, Destination] = {}
    for slot, row in first.items():
        mailbox = None
        if row.is_mailbox:
            quota = -1 if row.quota_bytes is None else int(row.quota_bytes)
            mailbox = Mailbox(row.id, quota, int(row.usage_bytes or 0))
        destination = Destination(
            key=row.key,
            mailbox=mailbox,
            forwards=tuple(forwards[slot]),
            receiving_disabled=bool(row.receiving_disabled),
            address_id=str(row.id),
        )
        if row.catch_all_domain is None:
            addresses[row.key] = destination
        else:
            catch_alls[row.catch_all_domain] = destination
    return Found(addresses, catch_alls)


# A login's mailbox by the address's unique key (an index probe); only mailboxes have a login.
_LOGIN = select(_a.id, _a.password_hash).where(_a.lookup_key == bindparam("key"), _a.is_mailbox)


def find_login(connection: Connection, key: str) -> tuple[str, str | None] | None:
    """The mailbox id and password hash of the mailbox whose lookup key is `key`, if any."""
    row = connection.execute(_LOGIN, {"key": key}).first()
    return None if row is None else (str(row.id), row.password_hash)


def record_usage(connection: Connection, usage: Mapping[str, tuple[int, datetime]]) -> None:
    """Store the storage usage of mailboxes (by mailbox id: bytes, when measured). Through
    `repository.update_address`, so the API's stored document shows it at once; an id that is no longer
    an address changes nothing."""
    for mailbox_id, (usage_bytes, measured_at) in usage.items():
        repository.update_address(
            connection, mailbox_id, {"usage_bytes": usage_bytes, "usage_updated_at": measured_at}
        )
