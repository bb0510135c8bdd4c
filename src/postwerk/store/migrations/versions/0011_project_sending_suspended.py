"""the provider's suspension of a whole project's sending

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28

`postwerk sending suspend --project ID` sets it: no mailbox or delivery box of the project may send through
submission while it holds, those created later included (the submission side reads it with the account,
`store.mail_lookups.find_account`). Receiving is not affected. A single account's suspension is its own
`sending_enabled` instead, which its API document shows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases (no table copy on SQLite: the views and foreign keys stay).
    op.add_column(
        "projects",
        sa.Column("sending_suspended", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("sending_suspended")
