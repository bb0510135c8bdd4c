"""each address keeps its API document, stored by every write (see `postwerk.store.address_document`)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Existing rows keep NULL until their next write; reads compute the document for them meanwhile.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch copy on SQLite: that would break the lookup views on the table).
    op.add_column("mail_addresses", sa.Column("document", sa.Text(), nullable=True))
    op.add_column("mail_addresses", sa.Column("document_version", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mail_addresses") as batch:
        batch.drop_column("document_version")
        batch.drop_column("document")
