"""PostgreSQL: the domain lookup (Postfix) and the userdb lookup (Dovecot) as functions, planned once

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27

Both run once for every inbound message, as plain query text: PostgreSQL parsed, rewrote (the views) and
planned them every time, more than the index probe each one is (the domain query with its key conversion,
two indexes OR'd; the userdb query through the `mail_mailboxes` view). In PL/pgSQL the statements are
planned once per connection and kept, as for the recipients (migrations 0007, 0012). They answer what the
queries of `domains.cf` and `dovecot-sql.conf.ext` answer on SQLite, which keeps those (it prepares a query in
microseconds); tests/mail/test_lookup_queries.py holds both databases to the same answers.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

DOMAIN_FUNCTION = """
CREATE OR REPLACE FUNCTION postwerk_domain(postfix_key text) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $domain$
DECLARE
  -- As in postwerk_routes: the key as Postfix 3.7's pgsql client sends it, turned back into its text.
  lookup text := CASE WHEN octet_length(postfix_key) = char_length(postfix_key) THEN postfix_key
                      ELSE convert_from(convert_to(postfix_key, 'LATIN1'), 'UTF8') END;
BEGIN
  RETURN QUERY SELECT CAST(domain AS TEXT) FROM mail_domains WHERE domain = lookup OR domain_unicode = lookup;
END
$domain$
"""

MAILBOX_USER_FUNCTION = """
CREATE OR REPLACE FUNCTION postwerk_mailbox_user(mailbox_id text) RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $user$
BEGIN
  RETURN QUERY SELECT CAST(m.mailbox_id AS TEXT) FROM mail_mailboxes m WHERE m.mailbox_id = $1;
END
$user$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DOMAIN_FUNCTION)
        op.execute(MAILBOX_USER_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION postwerk_mailbox_user(text)")
        op.execute("DROP FUNCTION postwerk_domain(text)")
