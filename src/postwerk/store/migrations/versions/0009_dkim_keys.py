"""DKIM key pairs of hosted domains

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27

One row per key (`postwerk.domain.dkim`): the active key signs the submission services' mail (the milter
`postwerk.dkim` reads it for every message, so a new or rotated key counts at once on every mail node); a
"next" key (`rotate --prepare`) and retired keys are only listed among the domain's DNS records. The private
key (PKCS#8 PEM) is a secret like the password hashes beside it: readable by whoever may read the database.

No key is made here: domains from before this revision get theirs the first time their records are read
(`postwerk domain records`, `GET /v2/projects/{id}/mail-domains`), where the customer learns what to publish.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CURRENT = "status <> 'retired'"


def upgrade() -> None:
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("domain_id", sa.String(length=36), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_dkim_keys_domain_id_domains"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dkim_keys")),
    )
    with op.batch_alter_table("dkim_keys", schema=None) as batch_op:
        batch_op.create_index("uq_dkim_keys_domain_selector", ["domain_id", "selector"], unique=True)
        batch_op.create_index(
            "uq_dkim_keys_current",
            ["domain_id", "status"],
            unique=True,
            sqlite_where=sa.text(_CURRENT),
            postgresql_where=sa.text(_CURRENT),
        )


def downgrade() -> None:
    with op.batch_alter_table("dkim_keys", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_dkim_keys_current", sqlite_where=sa.text(_CURRENT), postgresql_where=sa.text(_CURRENT)
        )
        batch_op.drop_index("uq_dkim_keys_domain_selector")
    op.drop_table("dkim_keys")
