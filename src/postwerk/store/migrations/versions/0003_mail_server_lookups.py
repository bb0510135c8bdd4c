"""lookups for the mail servers: the U-label spelling of every address, routes, catch-alls

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Postfix case-folds a recipient but keeps its domain as the sender wrote it (U-label or A-label), and Dovecot
can lower-case a login but not convert it to an A-label. So besides `lookup_key` (folded local part @
A-label) every address gets `unicode_key` (the same folded local part @ the U-label), computed by the
database from the columns the service writes, so no code path can forget it; both are index probes.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# `lookup_key` ends in "@" + domain_ascii (see postwerk.domain.addresses.lookup_key): keep the folded local
# part and the "@", swap the domain. Lengths are in characters on both databases.
UNICODE_KEY = "substr(lookup_key, 1, length(lookup_key) - length(domain_ascii)) || domain_unicode"

OLD_VIEWS = ("mail_mailboxes", "mail_logins")

VIEWS = (
    """
    CREATE VIEW mail_mailboxes AS
    SELECT a.lookup_key AS address, a.unicode_key AS address_unicode, a.id AS mailbox_id,
           a.mailbox_name AS name, a.password_hash AS password, a.quota_bytes AS quota_bytes,
           a.sending_enabled AS sending_enabled, a.receiving_disabled AS receiving_disabled,
           a.domain_ascii AS domain, a.project_id AS project_id
    FROM mail_addresses a
    WHERE a.is_mailbox
    """,
    """
    CREATE VIEW mail_logins AS
    SELECT a.lookup_key AS login, a.unicode_key AS login_unicode, a.password_hash AS password,
           'mailbox' AS kind, a.id AS account_id, a.sending_enabled AS sending_enabled,
           a.project_id AS project_id
    FROM mail_addresses a WHERE a.is_mailbox
    UNION ALL
    SELECT b.name AS login, b.name AS login_unicode, b.password_hash AS password, 'deliverybox' AS kind,
           b.id AS account_id, (b.sending_enabled AND b.authentication_enabled) AS sending_enabled,
           b.project_id AS project_id
    FROM delivery_boxes b
    """,
    # Where mail for a hosted address goes: one row per destination, its own mailbox (by id, never by
    # address) and each forward target. Every address has at least one row, so a catch-all can never take
    # the mail of an existing address, whatever the order in which they were created.
    """
    CREATE VIEW mail_routes AS
    SELECT a.lookup_key AS recipient, a.unicode_key AS recipient_unicode, a.id AS address_id,
           a.id AS mailbox_id, NULL AS forward_to, a.receiving_disabled AS receiving_disabled
    FROM mail_addresses a
    WHERE a.is_mailbox
    UNION ALL
    SELECT a.lookup_key AS recipient, a.unicode_key AS recipient_unicode, a.id AS address_id,
           NULL AS mailbox_id, f.target_route AS forward_to, a.receiving_disabled AS receiving_disabled
    FROM mail_addresses a JOIN forward_targets f ON f.address_id = a.id
    """,
    # The catch-all address of a domain, by either spelling of the domain; the mail server then routes
    # it like any address (so it keeps its own mailbox and forwards).
    """
    CREATE VIEW mail_catch_alls AS
    SELECT d.name_ascii AS domain, d.name_unicode AS domain_unicode, a.lookup_key AS address
    FROM domains d JOIN mail_addresses a ON a.domain_id = d.id AND a.is_catch_all
    """,
)


def upgrade() -> None:
    for view in OLD_VIEWS:
        op.execute(f"DROP VIEW {view}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"ALTER TABLE mail_addresses ADD COLUMN unicode_key text GENERATED ALWAYS AS ({UNICODE_KEY}) STORED"
        )
    else:
        # SQLite adds only VIRTUAL generated columns in place (no table copy, which the views would break).
        op.execute(
            f"ALTER TABLE mail_addresses ADD COLUMN unicode_key TEXT GENERATED ALWAYS AS ({UNICODE_KEY}) VIRTUAL"
        )
    op.execute("CREATE INDEX ix_mail_addresses_unicode_key ON mail_addresses (unicode_key)")
    op.execute("CREATE INDEX ix_domains_name_unicode ON domains (name_unicode)")
    for statement in VIEWS:
        op.execute(statement)


def downgrade() -> None:
    for view in ("mail_catch_alls", "mail_routes", "mail_logins", "mail_mailboxes"):
        op.execute(f"DROP VIEW {view}")
    op.execute("DROP INDEX ix_domains_name_unicode")
    op.execute("DROP INDEX ix_mail_addresses_unicode_key")
    op.execute("ALTER TABLE mail_addresses DROP COLUMN unicode_key")
    op.execute(
        """
        CREATE VIEW mail_mailboxes AS
        SELECT a.lookup_key AS address, a.id AS mailbox_id, a.mailbox_name AS name,
               a.password_hash AS password, a.quota_bytes AS quota_bytes,
               a.sending_enabled AS sending_enabled, a.receiving_disabled AS receiving_disabled,
               a.domain_ascii AS domain, a.project_id AS project_id
        FROM mail_addresses a
        WHERE a.is_mailbox
        """
    )
    op.execute(
        """
        CREATE VIEW mail_logins AS
        SELECT a.lookup_key AS login, a.password_hash AS password, 'mailbox' AS kind, a.id AS account_id,
               a.sending_enabled AS sending_enabled, a.project_id AS project_id
        FROM mail_addresses a WHERE a.is_mailbox
        UNION ALL
        SELECT b.name AS login, b.password_hash AS password, 'deliverybox' AS kind, b.id AS account_id,
               (b.sending_enabled AND b.authentication_enabled) AS sending_enabled, b.project_id AS project_id
        FROM delivery_boxes b
        """
    )
