"""SQLite timestamps stored as the API writes them (`2026-11-26T10:43:39.123456Z`)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Lets the database copy them into JSON documents as they are (see `postwerk.store.tables.UtcDateTime`).
PostgreSQL keeps `timestamptz`: nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMPS = {
    "projects": ("created_at", "updated_at"),
    "domains": ("created_at",),
    "mail_addresses": (
        "password_updated_at",
        "usage_updated_at",
        "autoresponder_starts_at",
        "autoresponder_expires_at",
        "created_at",
        "updated_at",
    ),
    "delivery_boxes": ("password_updated_at", "created_at", "updated_at"),
    "api_tokens": ("created_at",),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = replace({column}, ' ', 'T') || 'Z' "
                f"WHERE {column} LIKE '____-__-__ %'"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = rtrim(replace({column}, 'T', ' '), 'Z') "
                f"WHERE {column} LIKE '____-__-__T%Z'"
            )
