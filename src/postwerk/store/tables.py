"""The schema. Fields the mail servers need are plain columns (no JSON blobs), one row per forward target.

Postfix and Dovecot never read these tables directly: they read the lookup views (see the migrations).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

UUID_LENGTH = 36
ADDRESS_KEY_LENGTH = 320


# SQLite keeps timestamps as text. Postwerk writes that text in the form the API returns (RFC 3339, UTC,
# six fractional digits, `Z`), so the database can copy it into JSON documents as it is
# (`store.json_documents`); a fixed width keeps text order equal to time order. Reading also accepts the
# form SQLAlchemy writes by default (space, no `Z`), from before migration 0004.
SQLITE_TIMESTAMP_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02dT%(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06dZ"
)
_SQLITE_TIMESTAMP = sqlite.DATETIME(  # type: ignore[no-untyped-call]
    storage_format=SQLITE_TIMESTAMP_FORMAT,
    regexp=r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{6}))?Z?$",
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone, so it is restored on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLITE_TIMESTAMP)
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


projects = Table(
    "projects",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column("short_id", String(8), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("customer_id", String(UUID_LENGTH), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    # The provider's suspension of the whole project's sending (`postwerk sending suspend --project`): every
    # mailbox and delivery box of the project, those created later too (migration 0011).
    Column("sending_suspended", Boolean, nullable=False, server_default=text("false")),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    Index("ix_projects_created_at", "created_at"),
)

domains = Table(
    "domains",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column(
        "project_id",
        String(UUID_LENGTH),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name_ascii", String(253), nullable=False, unique=True),
    Column("name_unicode", String(253), nullable=False),
    # The U-label as Postfix folds a lookup key (`DomainName.folded`, migration 0015), unique: two names that
    # fold alike are one to Postfix's maps, so only one of them is hosted. NULL only for the later of such a
    # pair hosted before 0015, or a row an earlier release wrote during an upgrade.
    Column("name_folded", Text),
    _timestamp("created_at"),
    Index("uq_domains_name_folded", "name_folded", unique=True),
)

mail_addresses = Table(
    "mail_addresses",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column("project_id", String(UUID_LENGTH), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("domain_id", String(UUID_LENGTH), ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    Column("address", Text, nullable=False),  # as the customer wrote it
    Column("local_part", Text, nullable=False),
    Column("domain_ascii", String(253), nullable=False),
    Column("domain_unicode", String(253), nullable=False),
    Column("lookup_key", String(ADDRESS_KEY_LENGTH), nullable=False, unique=True),
    # The same key with the U-label domain, computed by the database (migration 0003): what Postfix and
    # Dovecot look an address up by when it is written with its Unicode domain.
    Column(
        "unicode_key",
        Text,
        Computed("substr(lookup_key, 1, length(lookup_key) - length(domain_ascii)) || domain_unicode"),
        index=True,
    ),
    Column(
        "search_text", Text, nullable=False, server_default=text("''")
    ),  # see domain.addresses.search_text
    Column("is_mailbox", Boolean, nullable=False),
    Column("is_catch_all", Boolean, nullable=False, server_default=text("false")),
    Column("receiving_disabled", Boolean, nullable=False, server_default=text("false")),
    # Mailbox columns (NULL for forwarding addresses). The storage is named by `id`, never by address.
    Column("mailbox_name", String(32), unique=True),
    Column("password_hash", Text),
    _timestamp("password_updated_at", nullable=True),
    Column("quota_bytes", BigInteger),
    Column("sending_enabled", Boolean),
    Column("spam_active", Boolean),
    Column("spam_folder", String(8)),
    Column("spam_min_score", Integer),
    Column("spam_auto_delete", Boolean),
    Column("rate_limit_id", String(UUID_LENGTH)),
    Column("rate_limit_request_id", String(UUID_LENGTH)),
    Column("usage_bytes", BigInteger, nullable=False, server_default=text("0")),
    _timestamp("usage_updated_at"),
    Column("autoresponder_active", Boolean, nullable=False, server_default=text("false")),
    Column("autoresponder_message", Text),
    _timestamp("autoresponder_starts_at", nullable=True),
    _timestamp("autoresponder_expires_at", nullable=True),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    # The address as the API returns it, stored by every write (see `store.address_document`).
    Column("document", Text),
    Column("document_version", String(16)),
    Index("ix_mail_addresses_project_order", "project_id", "domain_ascii", "local_part"),
    Index("ix_mail_addresses_domain_id", "domain_id"),
    Index(
        "uq_mail_addresses_catch_all",
        "domain_id",
        unique=True,
        sqlite_where=text("is_catch_all"),
        postgresql_where=text("is_catch_all"),
    ),
)

forward_targets = Table(
    "forward_targets",
    metadata,
    Column(
        "address_id",
        String(UUID_LENGTH),
        ForeignKey("mail_addresses.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("target", Text, nullable=False),  # as the customer wrote it
    Column("target_key", String(ADDRESS_KEY_LENGTH), nullable=False),
    Column("target_route", Text, nullable=False),  # local part @ A-label domain, what Postfix relays to
    Index("uq_forward_targets_address_target", "address_id", "target_key", unique=True),
    Index("ix_forward_targets_target_key", "target_key"),
)

# When each mailbox was deleted (written in the transaction that deletes it, however it goes: the address,
# its domain or its project): the mail node's sweep removes the mail once the grace period since then has
# passed (`postwerk.mailstack.sweep`). No foreign key: the mailbox is gone. Rows are pruned by the sweep.
deleted_mailboxes = Table(
    "deleted_mailboxes",
    metadata,
    Column("mailbox_id", String(UUID_LENGTH), primary_key=True),
    _timestamp("deleted_at"),
    Index("ix_deleted_mailboxes_deleted_at", "deleted_at"),
)

delivery_boxes = Table(
    "delivery_boxes",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column(
        "project_id",
        String(UUID_LENGTH),
        ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(32), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    _timestamp("password_updated_at"),
    Column("authentication_enabled", Boolean, nullable=False, server_default=text("true")),
    Column("sending_enabled", Boolean, nullable=False, server_default=text("true")),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

# DKIM key pairs of hosted domains (`postwerk.domain.dkim`): one "active" key per domain signs; "next" and
# "retired" keys are only listed among the domain's DNS records. `private_key` is a secret (PKCS#8 PEM).
dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column(
        "domain_id",
        String(UUID_LENGTH),
        ForeignKey("domains.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("selector", String(63), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("status", String(8), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("private_key", Text, nullable=False),
    _timestamp("created_at"),
    _timestamp("activated_at", nullable=True),
    _timestamp("retired_at", nullable=True),
    Index("uq_dkim_keys_domain_selector", "domain_id", "selector", unique=True),
    # At most one active and one next key per domain (retired ones may pile up until removed).
    Index(
        "uq_dkim_keys_current",
        "domain_id",
        "status",
        unique=True,
        sqlite_where=text("status <> 'retired'"),
        postgresql_where=text("status <> 'retired'"),
    ),
)

# The recipients each account sent mail to in the last hour, per minute (`postwerk.domain.sending_rate`),
# written by the rate-limit service (`postwerk.ratelimit`) at the end of every message sent through
# submission: one row per account, locked, read and rewritten in one short transaction. Keyed by the
# account's id (a mailbox's or a delivery box's, so no foreign key); a row whose newest count has left the
# window holds nothing and is pruned by the service (`newest_slot`, a minute number, indexed for that).
sending_windows = Table(
    "sending_windows",
    metadata,
    Column("account_id", String(UUID_LENGTH), primary_key=True),
    Column("counts", Text, nullable=False),
    Column("newest_slot", BigInteger, nullable=False),
    Index("ix_sending_windows_newest_slot", "newest_slot"),
)

sender_rules = Table(
    "sender_rules",
    metadata,
    Column(
        "project_id", String(UUID_LENGTH), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("list_kind", String(9), primary_key=True),  # "blacklist" or "whitelist"
    Column("position", Integer, primary_key=True),
    Column("entry", String(254), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(UUID_LENGTH), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("project_id", String(UUID_LENGTH), ForeignKey("projects.id", ondelete="CASCADE")),
    Column("is_admin", Boolean, nullable=False),
    Column("read_only", Boolean, nullable=False),
    _timestamp("created_at"),
)
