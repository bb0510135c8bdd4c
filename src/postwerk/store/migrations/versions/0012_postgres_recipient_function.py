"""PostgreSQL: every recipient map of Postfix in one function, so a lookup is one query, not four

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26

Postfix asks each map of `virtual_alias_maps` in turn, for the address and then for `@domain`, and the
`domain =` guard of a map is one more query of its own: an outside recipient cost eight SQL lookups in
cleanup alone, and a submitted message about twenty (counted in PostgreSQL's log, bench/smtp_submission.py),
each one parsed and planned by PostgreSQL. `postwerk_recipient` gives for a key what the maps `mailboxes`,
`routes`, `postmaster` and `catch_alls` gave one after the other (read their comments in
postwerk/mailstack/templates/postfix/): a plain mailbox first, then the routes (`postwerk_routes`, migration
0007), then the provider's postmaster, and for `@domain` the catch-all; its statements are planned once per
connection. The map for PostgreSQL (`recipients.pgsql.cf`) calls it in their place; SQLite keeps the four
maps (it prepares a query in microseconds, but the recursive routes query in ~220). The mail hostname and the
postmaster target are arguments: they are settings, not data. tests/mail/test_lookup_queries.py holds it to
the four maps' answers.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

RECIPIENT_FUNCTION = """
CREATE OR REPLACE FUNCTION postwerk_recipient(postfix_key text, mail_hostname text, postmaster_target text)
RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $recipient$
DECLARE
  -- As in postwerk_routes: the key as Postfix 3.7's pgsql client sends it, turned back into its text.
  lookup text := CASE WHEN octet_length(postfix_key) = char_length(postfix_key) THEN postfix_key
                      ELSE convert_from(convert_to(postfix_key, 'LATIN1'), 'UTF8') END;
  domain_part text := substring(lookup from '@([^@]*)$');
BEGIN
  IF domain_part IS NULL OR domain_part = '' THEN
    RETURN;
  END IF;
  IF lookup = '@' || domain_part THEN
    RETURN QUERY SELECT CAST(address AS TEXT) FROM mail_catch_alls
      WHERE domain = domain_part OR domain_unicode = domain_part;
    RETURN;
  END IF;
  RETURN QUERY SELECT r.address_id || '@mailbox.postwerk.invalid' FROM mail_recipients r
    WHERE (r.recipient = lookup OR r.recipient_unicode = lookup) AND r.is_mailbox AND NOT r.receiving_disabled
      AND (SELECT f.address_id FROM forward_targets f WHERE f.address_id = r.address_id LIMIT 1) IS NULL;
  IF FOUND THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT postwerk_routes(postfix_key);
  IF FOUND THEN
    RETURN;
  END IF;
  IF lookup = 'postmaster@' || domain_part AND (domain_part = mail_hostname OR EXISTS (
      SELECT 1 FROM mail_domains WHERE domain = domain_part OR domain_unicode = domain_part)) THEN
    RETURN NEXT postmaster_target;
  END IF;
END
$recipient$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(RECIPIENT_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION postwerk_recipient(text, text, text)")
