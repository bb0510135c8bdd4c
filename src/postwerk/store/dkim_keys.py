"""DKIM keys (`postwerk.domain.dkim`): what the admin commands, the records route and the signing milter read
and write. The private key is only ever selected by `signing_key`, the milter's question."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from postwerk.domain.dkim import KeyPair, KeyStatus
from postwerk.domain.dns_records import ListedKey
from postwerk.store.tables import dkim_keys, domains

_k = dkim_keys.c
# Listed keys in the order the records show them: the active one, a prepared next one, then retired ones.
_STATUS_ORDER = {KeyStatus.ACTIVE.value: 0, KeyStatus.NEXT.value: 1, KeyStatus.RETIRED.value: 2}


@dataclass(frozen=True)
class StoredKey:
    id: str
    domain_id: str
    selector: str
    algorithm: str
    status: str
    public_key: str
    created_at: datetime

    def listed(self) -> ListedKey:
        return ListedKey(self.selector, self.algorithm, self.public_key, self.status)


@dataclass(frozen=True)
class SigningKey:
    """The active key of a domain, with its private half: only the milter asks for this."""

    domain: str  # A-label
    selector: str
    private_key_pem: str = field(repr=False)


_PUBLIC_COLUMNS = (
    _k.id,
    _k.domain_id,
    _k.selector,
    _k.algorithm,
    _k.status,
    _k.public_key,
    _k.created_at,
)


def _sorted(rows: Sequence[Any]) -> list[StoredKey]:
    keys = [StoredKey(*row) for row in rows]
    keys.sort(key=lambda key: (_STATUS_ORDER.get(key.status, 3), key.created_at, key.selector))
    return keys


def keys_of_domain(connection: Connection, domain_id: str) -> list[StoredKey]:
    rows = connection.execute(select(*_PUBLIC_COLUMNS).where(_k.domain_id == domain_id)).all()
    return _sorted(rows)


def keys_of_domains(connection: Connection, domain_ids: Sequence[str]) -> dict[str, list[StoredKey]]:
    """The listed keys of several domains at once (by domain id)."""
    result: dict[str, list[StoredKey]] = {domain_id: [] for domain_id in domain_ids}
    if not domain_ids:
        return result
    statement = select(*_PUBLIC_COLUMNS).where(_k.domain_id.in_(bindparam("ids", expanding=True)))
    for key in _sorted(connection.execute(statement, {"ids": list(domain_ids)}).all()):
        result[key.domain_id].append(key)
    return result


def insert_key(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(dkim_keys).values(**values))


def insert_key_pair(
    connection: Connection,
    *,
    key_id: str,
    domain_id: str,
    selector: str,
    pair: KeyPair,
    status: KeyStatus,
    made_at: datetime,
) -> None:
    insert_key(
        connection,
        {
            "id": key_id,
            "domain_id": domain_id,
            "selector": selector,
            "algorithm": pair.algorithm,
            "status": status.value,
            "public_key": pair.public_key,
            "private_key": pair.private_key_pem,
            "created_at": made_at,
            "activated_at": made_at if status is KeyStatus.ACTIVE else None,
        },
    )


def set_status(connection: Connection, key_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(dkim_keys).where(_k.id == key_id).values(**values))


def delete_key(connection: Connection, key_id: str) -> None:
    connection.execute(delete(dkim_keys).where(_k.id == key_id))


# The milter's question for every message: one index probe on the domain's unique name, one on the partial
# index of current keys.
_SIGNING_KEY = (
    select(domains.c.name_ascii, _k.selector, _k.private_key)
    .select_from(domains.join(dkim_keys, _k.domain_id == domains.c.id))
    .where(domains.c.name_ascii == bindparam("domain"), _k.status == KeyStatus.ACTIVE.value)
)


def signing_key(connection: Connection, ascii_domain: str) -> SigningKey | None:
    """The active key of a hosted domain (A-label), or None (not hosted, or no key yet)."""
    row = connection.execute(_SIGNING_KEY, {"domain": ascii_domain.lower()}).first()
    return None if row is None else SigningKey(row.name_ascii, row.selector, row.private_key)
