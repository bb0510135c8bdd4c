"""the room check at RCPT: a plain mailbox with room for any message is accepted without the policy service

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27

Nearly all inbound mail goes to a plain mailbox (receiving, no forwards of its own) that is far from its
quota. For those smtpd asked Postwerk's policy service, a Python process, about every recipient: in
bench/smtp_inbound.py that service cost more CPU than the SQL statement it ran. Postfix's `room` map
(`check_recipient_access` before the policy service in main.cf) now answers `OK` by itself where the answer
cannot depend on anything the policy service weighs: the recipient is a plain mailbox by its exact key, and
its quota is unlimited or has room for a message of the largest size Postfix accepts (`message_size_limit`,
an argument: a setting, not data). Everything else is answered `DUNNO` and goes on to the policy service as
before, which decides with the announced size, follows forwards and the catch-all, and refuses. A `DUNNO`
also stops Postfix from trying the key's shorter forms (`user@domain`, `domain`, `user@`) in the map.

- `mail_plain_mailboxes`: every plain mailbox with its quota and usage (both databases; the query of
  `room.cf` on SQLite);
- `postwerk_mailbox_room` (PostgreSQL): that query as a function, planned once per connection like the
  other lookups (migrations 0007, 0012, 0013), for `room.pgsql.cf`.

tests/mail/test_lookup_queries.py holds the map to the policy service's answer (`domain.delivery_quota`):
wherever the map says `OK`, the policy service says `OK` for every size Postfix accepts.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# "No forwards" as in the mailboxes map (templates/postfix/mailboxes.cf): a scalar subquery, an index probe.
PLAIN_MAILBOXES = """
    CREATE VIEW mail_plain_mailboxes AS
    SELECT a.lookup_key AS recipient, a.unicode_key AS recipient_unicode, a.id AS mailbox_id,
           a.quota_bytes AS quota_bytes, a.usage_bytes AS usage_bytes
    FROM mail_addresses a
    WHERE a.is_mailbox AND NOT a.receiving_disabled
      AND (SELECT f.address_id FROM forward_targets f WHERE f.address_id = a.id LIMIT 1) IS NULL
    """

ROOM_FUNCTION = """
CREATE OR REPLACE FUNCTION postwerk_mailbox_room(postfix_key text, message_size_limit bigint) RETURNS text
LANGUAGE plpgsql STABLE AS $room$
DECLARE
  -- As in postwerk_routes: the key as Postfix 3.7's pgsql client sends it, turned back into its text.
  lookup text := CASE WHEN octet_length(postfix_key) = char_length(postfix_key) THEN postfix_key
                      ELSE convert_from(convert_to(postfix_key, 'LATIN1'), 'UTF8') END;
BEGIN
  -- The quota less the limit, not the usage plus it: a bigint near its end must not overflow.
  PERFORM 1 FROM mail_plain_mailboxes m
    WHERE (m.recipient = lookup OR m.recipient_unicode = lookup)
      AND (m.quota_bytes IS NULL OR m.quota_bytes < 0 OR m.usage_bytes <= m.quota_bytes - message_size_limit);
  IF FOUND THEN
    RETURN 'OK';
  END IF;
  RETURN 'DUNNO';
END
$room$
"""


def upgrade() -> None:
    op.execute(PLAIN_MAILBOXES)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ROOM_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION postwerk_mailbox_room(text, bigint)")
    op.execute("DROP VIEW mail_plain_mailboxes")
