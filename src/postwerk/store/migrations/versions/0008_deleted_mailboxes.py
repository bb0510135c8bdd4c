"""when each mailbox was deleted, so the grace period of its mail counts from the deletion

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

The sweep of the mail node (`postwerk.mailstack.sweep`) counted a deleted mailbox's grace period from when it
first found the folder orphaned: a mailbox deleted while the mail node was down (or its sweep failing) kept
its mail for the grace period after the node came back, however long ago it was deleted. Every deletion of
a mailbox (the address, its domain, its project) now writes a row here in the same transaction. Folders
with no row (mailboxes deleted before this migration) still count from when the sweep first finds them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deleted_mailboxes",
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_deleted_mailboxes")),
    )
    with op.batch_alter_table("deleted_mailboxes", schema=None) as batch_op:
        batch_op.create_index("ix_deleted_mailboxes_deleted_at", ["deleted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deleted_mailboxes", schema=None) as batch_op:
        batch_op.drop_index("ix_deleted_mailboxes_deleted_at")
    op.drop_table("deleted_mailboxes")
