"""partial-match search over addresses: one folded search column, trigram-indexed on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("postwerk.migrations")


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy on SQLite: that would break the lookup views on the table).
    op.add_column(
        "mail_addresses", sa.Column("search_text", sa.Text(), server_default=sa.text("''"), nullable=False)
    )
    # Rows from before this revision: an approximation until their next change (the service writes the
    # exact folded form, `postwerk.domain.addresses.search_text`).
    op.execute(
        "UPDATE mail_addresses SET search_text = lower(address) || ' ' || lookup_key || ' ' "
        "|| coalesce(mailbox_name, '')"
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    # pg_trgm lets `search_text LIKE '%term%'` use an index: the admin's search across every project.
    # Without the right to create the extension, searches still work, scanning instead.
    savepoint = bind.begin_nested()
    try:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
        savepoint.commit()
    except sa.exc.DBAPIError as error:
        savepoint.rollback()
        log.warning("pg_trgm is not available (%s): address search will scan", type(error.orig).__name__)
        return
    op.execute(
        "CREATE INDEX ix_mail_addresses_search_trgm ON mail_addresses USING gin (search_text public.gin_trgm_ops)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_mail_addresses_search_trgm")
    op.drop_column("mail_addresses", "search_text")
