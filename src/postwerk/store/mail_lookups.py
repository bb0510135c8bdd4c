"""What Postwerk's own mail services (the policy service, the usage sync) read from and write to the store.

Kept apart from `repository` (the API's questions); writes of an address still go through
`repository.update_address`, which stores the address's API document in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    and_,
    bindparam,
    literal_column,
    null,
    select,
    union_all,
)

from postwerk.domain.delivery_quota import Destination, Found, Mailbox
from postwerk.domain.submission import Account, SenderAddress
from postwerk.store.driver_queries import driver_rows
from postwerk.store.tables import delivery_boxes, domains, forward_targets, mail_addresses, projects

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
# Statements by (number of keys, number of domains), each built once: run on the driver's cursor (the
# policy service asks this for every recipient at RCPT; SQLAlchemy's execution path, with its expanding IN
# lists compiled per call, cost more than the query itself). A recipient needs 1-2 keys and 1 domain.
_DESTINATIONS: dict[tuple[int, int], CompoundSelect[Any]] = {}


def _destinations_statement(keys: int, domain_names: int) -> CompoundSelect[Any]:
    """One statement, each half an index probe per key: addresses by their unique key, and the catch-all of
    a domain by the domain's unique name and the partial index on the catch-all (one per domain). Forward
    targets come along by their primary key (address_id, position)."""
    statement = _DESTINATIONS.get((keys, domain_names))
    if statement is None:
        key_params: list[ColumnElement[Any]] = [
            bindparam(f"key{n}", type_=_a.lookup_key.type) for n in range(keys)
        ]
        domain_params: list[ColumnElement[Any]] = [
            bindparam(f"domain{n}", type_=domains.c.name_ascii.type) for n in range(domain_names)
        ]
        statement = _DESTINATIONS[(keys, domain_names)] = union_all(
            select(*_destination_columns(null())).select_from(_joined).where(_a.lookup_key.in_(key_params)),
            select(*_destination_columns(domains.c.name_ascii))
            .select_from(
                domains.join(mail_addresses, and_(_a.domain_id == domains.c.id, _IS_CATCH_ALL)).outerjoin(
                    forward_targets, _f.address_id == _a.id
                )
            )
            .where(domains.c.name_ascii.in_(domain_params)),
        )
    return statement


def _padded(prefix: str, values: Sequence[str]) -> tuple[int, dict[str, str | None]]:
    """Bind values `{prefix}0`, `{prefix}1`, ... for an IN list, padded with NULL (which matches no row) to
    a power of two: the statements built per list length stay few, and each is compiled once."""
    slots = 1 if len(values) <= 1 else 1 << (len(values) - 1).bit_length()
    parameters: dict[str, str | None] = {f"{prefix}{n}": None for n in range(slots)}
    parameters.update({f"{prefix}{n}": value for n, value in enumerate(values)})
    return slots, parameters


def find_destinations(connection: Connection, keys: Sequence[str], domain_names: Sequence[str]) -> Found:
    """Hosted addresses by lookup key and the catch-alls of the given A-label domains, with their mailbox
    usage and forward targets (`domain.delivery_quota.Lookup`)."""
    if not keys and not domain_names:
        return Found()
    key_slots, parameters = _padded("key", keys)
    domain_slots, domain_parameters = _padded("domain", domain_names)
    parameters.update(domain_parameters)
    rows = driver_rows(connection, _destinations_statement(key_slots, domain_slots), parameters)
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


# --- submission: logins of delivery boxes, the accounts behind SASL login names, sender owners -----------

_b = delivery_boxes.c
# Every account comes with its project's `sending_suspended` (the provider's switch for the whole project,
# `postwerk sending suspend --project`): a primary-key join, so accounts made later are covered at once.
_PROJECT_SENDING_SUSPENDED = projects.c.sending_suspended.label("project_sending_suspended")
_DELIVERY_BOX_LOGIN = (
    select(_b.id, _b.password_hash, _b.sending_enabled, _b.authentication_enabled, _PROJECT_SENDING_SUSPENDED)
    .select_from(delivery_boxes.join(projects, projects.c.id == _b.project_id))
    .where(_b.name == bindparam("name"))
)


def _box_account(row: Any) -> Account:
    return Account(
        str(row.id),
        is_delivery_box=True,
        sending_enabled=bool(row.sending_enabled),
        authentication_enabled=bool(row.authentication_enabled),
        project_sending_suspended=bool(row.project_sending_suspended),
    )


def find_delivery_box_login(connection: Connection, name: str) -> tuple[Account, str | None] | None:
    """The delivery box whose name (its SMTP login) is `name`, with its password hash (a unique-index
    probe)."""
    row = connection.execute(_DELIVERY_BOX_LOGIN, {"name": name}).first()
    return None if row is None else (_box_account(row), row.password_hash)


_MAILBOX_ACCOUNT = (
    select(_a.id, _a.sending_enabled, _PROJECT_SENDING_SUSPENDED)
    .select_from(mail_addresses.join(projects, projects.c.id == _a.project_id))
    .where(_a.id == bindparam("id"), _a.is_mailbox)
)
_BOX_ACCOUNT = (
    select(_b.id, _b.sending_enabled, _b.authentication_enabled, _PROJECT_SENDING_SUSPENDED)
    .select_from(delivery_boxes.join(projects, projects.c.id == _b.project_id))
    .where(_b.id == bindparam("id"))
)


def find_account(connection: Connection, account_id: str) -> Account | None:
    """The mailbox or delivery box with this id (a SASL login name on submission), with its project's
    suspension of sending (`Account.project_sending_suspended`): primary-key probes."""
    row = connection.execute(_MAILBOX_ACCOUNT, {"id": account_id}).first()
    if row is not None:
        # NULL only for rows older than the column's use: sending was never switched off for them.
        return Account(
            str(row.id),
            is_delivery_box=False,
            sending_enabled=row.sending_enabled is not False,
            project_sending_suspended=bool(row.project_sending_suspended),
        )
    box = connection.execute(_BOX_ACCOUNT, {"id": account_id}).first()
    return None if box is None else _box_account(box)


# By number of key slots (`_padded`), built once: asked on every submitted message, on the driver's cursor.
_SENDER_ADDRESSES: dict[int, Select[Any]] = {}


def _sender_addresses_statement(slots: int) -> Select[Any]:
    statement = _SENDER_ADDRESSES.get(slots)
    if statement is None:
        keys = [bindparam(f"key{n}", type_=_a.lookup_key.type) for n in range(slots)]
        built: Select[Any] = (
            select(_a.id, _a.lookup_key, _a.is_mailbox, _f.target_key)
            .select_from(_joined)
            .where(_a.lookup_key.in_(keys))
            .order_by(_a.lookup_key, _f.position)
        )
        statement = _SENDER_ADDRESSES[slots] = built
    return statement


_DOMAIN_DELIVERY_BOXES = (
    select(_b.id)
    .select_from(domains.join(delivery_boxes, _b.project_id == domains.c.project_id))
    .where(domains.c.name_ascii == bindparam("domain"))
    .order_by(_b.created_at, _b.id)
)


class SenderLookup:
    """`domain.submission.SenderLookup` on one connection: index probes by address key and domain name."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def addresses(self, keys: Sequence[str]) -> dict[str, SenderAddress]:
        if not keys:
            return {}
        slots, parameters = _padded("key", keys)
        rows = driver_rows(self._connection, _sender_addresses_statement(slots), parameters)
        mailboxes: dict[str, str | None] = {}
        forwards: dict[str, list[str]] = {}
        for row in rows:
            mailboxes[row.lookup_key] = str(row.id) if row.is_mailbox else None
            targets = forwards.setdefault(row.lookup_key, [])
            if row.target_key is not None:
                targets.append(row.target_key)
        return {
            key: SenderAddress(key, mailbox_id, tuple(forwards[key])) for key, mailbox_id in mailboxes.items()
        }

    def delivery_boxes(self, ascii_domain: str) -> list[str]:
        rows = self._connection.execute(_DOMAIN_DELIVERY_BOXES, {"domain": ascii_domain}).all()
        return [str(row.id) for row in rows]
