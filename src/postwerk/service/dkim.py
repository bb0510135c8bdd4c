"""DKIM keys and DNS records of hosted domains: the admin commands (`postwerk domain dkim ...`,
`postwerk domain records`) and the records route (`GET /v2/projects/{id}/mail-domains`).

Key pairs are made before a transaction opens (about 40 ms each), like password hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from postwerk.domain.addresses import DomainName, parse_domain
from postwerk.domain.dkim import KeyPair, KeyStatus, new_key_pair, new_selector, plan_rotation
from postwerk.domain.dns_records import DnsRecord, PublicHost, records_for
from postwerk.domain.errors import Conflict, NotFound, ValidationFailed
from postwerk.service import Context, new_id, now
from postwerk.service.access import Caller
from postwerk.service.projects import insert_first_dkim_key, visible_project
from postwerk.store import dkim_keys as keys
from postwerk.store import repository as repo
from postwerk.store.dkim_keys import StoredKey

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class DomainRecords:
    domain: DomainName
    project_id: str
    keys: list[StoredKey]
    records: list[DnsRecord]

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain.unicode,
            "asciiDomain": self.domain.ascii,
            "projectId": self.project_id,
            "dkimKeys": [
                {
                    "selector": key.selector,
                    "algorithm": key.algorithm,
                    "status": key.status,
                    "createdAt": key.created_at,
                }
                for key in self.keys
            ],
            "records": [record.as_dict() for record in self.records],
        }


def _domain_row(connection: Connection, domain: DomainName) -> Row[Any]:
    row = repo.find_domain(connection, domain.ascii)
    if row is None:
        raise NotFound(f"the domain {domain.unicode} is not hosted here")
    return row


def _ensure_keys(ctx: Context, rows: Sequence[Row[Any]]) -> dict[str, list[StoredKey]]:
    """The listed keys of each domain; a domain without any (added before DKIM) gets its first one now."""
    with ctx.db.read() as connection:
        found = keys.keys_of_domains(connection, [row.id for row in rows])
    missing = [domain_id for domain_id, listed in found.items() if not listed]
    if not missing:
        return found
    pairs = {domain_id: new_key_pair() for domain_id in missing}
    for domain_id, pair in pairs.items():
        try:
            with ctx.db.write() as connection:
                if not keys.keys_of_domain(connection, domain_id):
                    insert_first_dkim_key(connection, domain_id, pair)
        except IntegrityError as error:
            # Another reader made its key at the same moment (or the domain went away): read what is there.
            if not repo.is_unique_violation(error) and "foreign key" not in str(error.orig).lower():
                raise
    with ctx.db.read() as connection:
        return keys.keys_of_domains(connection, [row.id for row in rows])


def _records(host: PublicHost, row: Row[Any], listed: list[StoredKey]) -> DomainRecords:
    domain = DomainName(unicode=row.name_unicode, ascii=row.name_ascii)
    return DomainRecords(
        domain, row.project_id, listed, records_for(domain, host, [k.listed() for k in listed])
    )


def domain_records(ctx: Context, name: str) -> DomainRecords:
    """`postwerk domain records DOMAIN`."""
    domain = parse_domain(name)
    with ctx.db.read() as connection:
        row = _domain_row(connection, domain)
    return _records(ctx.public_host, row, _ensure_keys(ctx, [row])[row.id])


def project_domain_records(ctx: Context, caller: Caller, project_reference: str) -> list[DomainRecords]:
    """`GET /v2/projects/{projectId}/mail-domains`: the project's domains with their records."""
    with ctx.db.read() as connection:
        project = visible_project(connection, caller.scope(connection), project_reference)
        rows = repo.list_domains(connection, project.id)
    listed = _ensure_keys(ctx, rows)
    return [_records(ctx.public_host, row, listed[row.id]) for row in rows]


def rotate(ctx: Context, name: str, *, prepare: bool = False) -> StoredKey:
    """A new key (or the prepared one) becomes the active key; the one that signed until now is retired and
    stays listed until removed. `prepare`: the new key is only listed ("next"), the active key keeps
    signing. Returns the key that was made or activated."""
    domain = parse_domain(name)
    pair = new_key_pair()
    for _ in range(MAX_ATTEMPTS):  # a selector taken by a concurrent rotation: try the next name
        try:
            with ctx.db.write() as connection:
                return _rotate(connection, _domain_row(connection, domain), pair, prepare=prepare)
        except IntegrityError as error:
            if not repo.is_unique_violation(error):
                raise
    raise Conflict(f"the keys of {domain.unicode} changed while rotating; try again")


def _rotate(connection: Connection, row: Row[Any], pair: KeyPair, *, prepare: bool) -> StoredKey:
    current = keys.keys_of_domain(connection, row.id)
    listed = [(key.id, key.selector, KeyStatus(key.status)) for key in current]
    rotation = plan_rotation(row.name_unicode, listed, prepare=prepare)
    timestamp = now()
    for key_id in rotation.retire:
        keys.set_status(connection, key_id, {"status": KeyStatus.RETIRED.value, "retired_at": timestamp})
    if rotation.activate is not None:
        keys.set_status(
            connection, rotation.activate, {"status": KeyStatus.ACTIVE.value, "activated_at": timestamp}
        )
    made = rotation.activate
    if rotation.new_key is not None:
        made = new_id()
        keys.insert_key_pair(
            connection,
            key_id=made,
            domain_id=row.id,
            selector=new_selector(timestamp, {key.selector for key in current}),
            pair=pair,
            status=rotation.new_key,
            made_at=timestamp,
        )
    return next(key for key in keys.keys_of_domain(connection, row.id) if key.id == made)


def remove_key(ctx: Context, name: str, selector: str) -> None:
    """Remove a retired or prepared key (and so its record from the list). The active key is never removed:
    rotate first."""
    domain = parse_domain(name)
    with ctx.db.write() as connection:
        row = _domain_row(connection, domain)
        found = [key for key in keys.keys_of_domain(connection, row.id) if key.selector == selector]
        if not found:
            raise NotFound(f"{domain.unicode} has no DKIM key with the selector {selector!r}")
        if found[0].status == KeyStatus.ACTIVE.value:
            raise ValidationFailed.at(
                ".selector",
                f"{selector} is the active key of {domain.unicode}: rotate first (`postwerk domain dkim"
                f" rotate {domain.unicode}`), remove it a week later",
                "not",
            )
        keys.delete_key(connection, found[0].id)
