"""Rows for loading many projects, domains and mailboxes straight into the tables (benchmarks only: the
service would hash a password per mailbox), and the statistics step that follows a bulk load."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text

from postwerk.domain.addresses import DomainName, MailAddress, search_text
from postwerk.domain.names import new_mailbox_name
from postwerk.store.repository import Database, store_stale_documents


def project_row(project_id: str, short_id: str, description: str, now: datetime) -> dict[str, object]:
    return {
        "id": project_id,
        "short_id": short_id,
        "description": description,
        "customer_id": project_id,
        "enabled": True,
        "created_at": now,
        "updated_at": now,
    }


def domain_row(domain_id: str, project_id: str, domain: str, now: datetime) -> dict[str, object]:
    """An ASCII domain (its Unicode and A-label forms are the same)."""
    return {
        "id": domain_id,
        "project_id": project_id,
        "name_ascii": domain,
        "name_unicode": domain,
        "name_folded": domain,
        "created_at": now,
    }


def mailbox_row(
    address_id: str,
    project_id: str,
    domain_id: str,
    local: str,
    domain: str,
    password_hash: str,
    now: datetime,
    *,
    spam_active: bool = True,
    rate_limit_id: str | None = None,
) -> dict[str, object]:
    """A mailbox at an ASCII address whose local part is lower-case already (so it is its own lookup key),
    named as the service names mailboxes (40 random bits collided at a million)."""
    name = new_mailbox_name()
    address = f"{local}@{domain}"
    return {
        "id": address_id,
        "project_id": project_id,
        "domain_id": domain_id,
        "address": address,
        "local_part": local,
        "domain_ascii": domain,
        "domain_unicode": domain,
        "lookup_key": address,
        "is_mailbox": True,
        "is_catch_all": False,
        "receiving_disabled": False,
        "mailbox_name": name,
        "search_text": search_text(MailAddress(address, local, DomainName(domain, domain)), name),
        "password_hash": password_hash,
        "password_updated_at": now,
        "quota_bytes": -1,
        "sending_enabled": True,
        "spam_active": spam_active,
        "spam_folder": "spam",
        "spam_min_score": 5,
        "spam_auto_delete": False,
        "rate_limit_id": rate_limit_id,
        "usage_bytes": 0,
        "usage_updated_at": now,
        "autoresponder_active": False,
        "created_at": now,
        "updated_at": now,
    }


def delivery_box_row(
    box_id: str, project_id: str, name: str, password_hash: str, now: datetime
) -> dict[str, object]:
    """A delivery box (its `name` is its SMTP login: at most 32 characters, unique)."""
    return {
        "id": box_id,
        "project_id": project_id,
        "name": name,
        "description": "bench application",
        "password_hash": password_hash,
        "password_updated_at": now,
        "authentication_enabled": True,
        "sending_enabled": True,
        "created_at": now,
        "updated_at": now,
    }


def store_documents(engine: Engine, batch: int = 5000) -> None:
    """Every address's API document stored, as `postwerk serve` stores them after a bulk load (in the
    background, at start): the mail servers then find the rows as a running installation has them."""
    store_stale_documents(Database(engine), batch)


def analyze(engine: Engine) -> None:
    """Fresh planner statistics after a bulk load, as autovacuum would gather them in time."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
