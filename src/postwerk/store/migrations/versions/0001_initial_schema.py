"""initial schema, with the first lookup views for Postfix and Dovecot

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The contract with the mail servers: the columns are named for what Postfix and Dovecot need, and every
# lookup by address is one probe of a unique index (`lookup_key`, `name_ascii`, `name`).
LOOKUP_VIEWS = (
    """
    CREATE VIEW mail_domains AS
    SELECT d.name_ascii AS domain, d.name_unicode AS domain_unicode, d.project_id AS project_id
    FROM domains d
    """,
    """
    CREATE VIEW mail_mailboxes AS
    SELECT a.lookup_key AS address, a.id AS mailbox_id, a.mailbox_name AS name,
           a.password_hash AS password, a.quota_bytes AS quota_bytes,
           a.sending_enabled AS sending_enabled, a.receiving_disabled AS receiving_disabled,
           a.domain_ascii AS domain, a.project_id AS project_id
    FROM mail_addresses a
    WHERE a.is_mailbox
    """,
    """
    CREATE VIEW mail_aliases AS
    SELECT a.lookup_key AS source, f.target_route AS destination, a.is_catch_all AS is_catch_all,
           a.domain_ascii AS domain
    FROM forward_targets f JOIN mail_addresses a ON a.id = f.address_id
    """,
    """
    CREATE VIEW mail_logins AS
    SELECT a.lookup_key AS login, a.password_hash AS password, 'mailbox' AS kind, a.id AS account_id,
           a.sending_enabled AS sending_enabled, a.project_id AS project_id
    FROM mail_addresses a WHERE a.is_mailbox
    UNION ALL
    SELECT b.name AS login, b.password_hash AS password, 'deliverybox' AS kind, b.id AS account_id,
           (b.sending_enabled AND b.authentication_enabled) AS sending_enabled, b.project_id AS project_id
    FROM delivery_boxes b
    """,
)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("short_id", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("short_id", name=op.f("uq_projects_short_id")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index("ix_projects_created_at", ["created_at"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_api_tokens_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )
    op.create_table(
        "delivery_boxes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("password_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authentication_enabled", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("sending_enabled", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_delivery_boxes_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_boxes")),
        sa.UniqueConstraint("name", name=op.f("uq_delivery_boxes_name")),
    )
    with op.batch_alter_table("delivery_boxes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_boxes_project_id"), ["project_id"], unique=False)

    op.create_table(
        "domains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("name_ascii", sa.String(length=253), nullable=False),
        sa.Column("name_unicode", sa.String(length=253), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_domains_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domains")),
        sa.UniqueConstraint("name_ascii", name=op.f("uq_domains_name_ascii")),
    )
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_domains_project_id"), ["project_id"], unique=False)

    op.create_table(
        "sender_rules",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("list_kind", sa.String(length=9), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("entry", sa.String(length=254), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_sender_rules_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "list_kind", "position", name=op.f("pk_sender_rules")),
    )
    op.create_table(
        "mail_addresses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("domain_id", sa.String(length=36), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("local_part", sa.Text(), nullable=False),
        sa.Column("domain_ascii", sa.String(length=253), nullable=False),
        sa.Column("domain_unicode", sa.String(length=253), nullable=False),
        sa.Column("lookup_key", sa.String(length=320), nullable=False),
        sa.Column("is_mailbox", sa.Boolean(), nullable=False),
        sa.Column("is_catch_all", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("receiving_disabled", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("mailbox_name", sa.String(length=32), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("password_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sending_enabled", sa.Boolean(), nullable=True),
        sa.Column("spam_active", sa.Boolean(), nullable=True),
        sa.Column("spam_folder", sa.String(length=8), nullable=True),
        sa.Column("spam_min_score", sa.Integer(), nullable=True),
        sa.Column("spam_auto_delete", sa.Boolean(), nullable=True),
        sa.Column("rate_limit_id", sa.String(length=36), nullable=True),
        sa.Column("rate_limit_request_id", sa.String(length=36), nullable=True),
        sa.Column("usage_bytes", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("usage_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("autoresponder_active", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("autoresponder_message", sa.Text(), nullable=True),
        sa.Column("autoresponder_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("autoresponder_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_mail_addresses_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_mail_addresses_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_addresses")),
        sa.UniqueConstraint("lookup_key", name=op.f("uq_mail_addresses_lookup_key")),
        sa.UniqueConstraint("mailbox_name", name=op.f("uq_mail_addresses_mailbox_name")),
    )
    with op.batch_alter_table("mail_addresses", schema=None) as batch_op:
        batch_op.create_index("ix_mail_addresses_domain_id", ["domain_id"], unique=False)
        batch_op.create_index(
            "ix_mail_addresses_project_order", ["project_id", "domain_ascii", "local_part"], unique=False
        )
        batch_op.create_index(
            "uq_mail_addresses_catch_all",
            ["domain_id"],
            unique=True,
            sqlite_where=sa.text("is_catch_all"),
            postgresql_where=sa.text("is_catch_all"),
        )

    op.create_table(
        "forward_targets",
        sa.Column("address_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("target_key", sa.String(length=320), nullable=False),
        sa.Column("target_route", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["address_id"],
            ["mail_addresses.id"],
            name=op.f("fk_forward_targets_address_id_mail_addresses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("address_id", "position", name=op.f("pk_forward_targets")),
    )
    with op.batch_alter_table("forward_targets", schema=None) as batch_op:
        batch_op.create_index("uq_forward_targets_address_target", ["address_id", "target_key"], unique=True)
        batch_op.create_index("ix_forward_targets_target_key", ["target_key"], unique=False)

    for statement in LOOKUP_VIEWS:
        op.execute(statement)


def downgrade() -> None:
    for view in ("mail_logins", "mail_aliases", "mail_mailboxes", "mail_domains"):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    with op.batch_alter_table("forward_targets", schema=None) as batch_op:
        batch_op.drop_index("uq_forward_targets_address_target")

    op.drop_table("forward_targets")
    with op.batch_alter_table("mail_addresses", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_mail_addresses_catch_all",
            sqlite_where=sa.text("is_catch_all"),
            postgresql_where=sa.text("is_catch_all"),
        )
        batch_op.drop_index("ix_mail_addresses_project_order")
        batch_op.drop_index("ix_mail_addresses_domain_id")

    op.drop_table("mail_addresses")
    op.drop_table("sender_rules")
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_domains_project_id"))

    op.drop_table("domains")
    with op.batch_alter_table("delivery_boxes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_boxes_project_id"))

    op.drop_table("delivery_boxes")
    op.drop_table("api_tokens")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("ix_projects_created_at")

    op.drop_table("projects")
