"""the counts of the sending rate limits

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28

One row per account that sent mail through submission in the last hour: its recipients per minute
(`postwerk.domain.sending_rate.Window`), which the rate-limit service (`postwerk.ratelimit`) locks, checks
and rewrites in one short transaction per message, so the limits hold across restarts and across mail nodes
sharing the database. The key is the account's id (a mailbox's or a delivery box's: no foreign key); rows
whose newest minute has left the window are pruned by the service, by the index on `newest_slot`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sending_windows",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("newest_slot", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_sending_windows")),
    )
    with op.batch_alter_table("sending_windows", schema=None) as batch_op:
        batch_op.create_index("ix_sending_windows_newest_slot", ["newest_slot"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sending_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_sending_windows_newest_slot")
    op.drop_table("sending_windows")
