"""lookups for expanding forwards in one answer: every hosted address, and where each forward target lands

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Postfix re-expands every answer of `virtual_alias_maps` up to its nesting limit, so a forwarding loop between
hosted addresses (even one in which each mailbox forwards a copy to the other) ended in `451 4.6.0`. The
routes map now answers with the final destinations of a recipient at once (a recursive query, see the
postfix `routes.cf` template), and needs two views for it:

- `mail_recipients`: every hosted address with the two switches that decide what it does with mail;
- `mail_forwards`: one row per forward target with the hosted address it lands on, by the same precedence as
  a recipient (exact key, then without its `+extension`, then the catch-all of its domain; see
  `postwerk.domain.delivery_quota.recipient_keys`), or NULL when it leaves the installation.

Both are plain joins (no UNION), so the recursive step is an index probe per address on both databases.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _forwards_view(position: str) -> str:
    """`position` is the dialect's substring search (SQLite `instr`, PostgreSQL `strpos`, same arguments)."""
    key = "f.target_key"
    # A key is "folded local part@A-label domain"; local parts never hold "@" (no quoted local parts) and
    # A-labels never hold "+", so the first "+" after the first character is the extension's delimiter,
    # as in Postfix's split_addr and `delivery_quota.recipient_keys`.
    at = f"{position}({key}, '@')"
    plus = f"{position}(substr({key}, 2), '+')"
    base_key = f"CASE WHEN {plus} > 0 THEN substr({key}, 1, {plus}) || substr({key}, {at}) END"
    domain = f"substr({key}, {at} + 1)"
    return f"""
    CREATE VIEW mail_forwards AS
    SELECT f.address_id AS address_id, f.position AS position, f.target_route AS target,
           COALESCE(
               (SELECT t.id FROM mail_addresses t WHERE t.lookup_key = {key}),
               (SELECT t.id FROM mail_addresses t WHERE t.lookup_key = {base_key}),
               (SELECT t.id FROM domains d JOIN mail_addresses t ON t.domain_id = d.id AND t.is_catch_all
                WHERE d.name_ascii = {domain})
           ) AS target_address_id
    FROM forward_targets f
    """


RECIPIENTS = """
    CREATE VIEW mail_recipients AS
    SELECT a.lookup_key AS recipient, a.unicode_key AS recipient_unicode, a.id AS address_id,
           a.is_mailbox AS is_mailbox, a.receiving_disabled AS receiving_disabled
    FROM mail_addresses a
    """


def upgrade() -> None:
    position = "strpos" if op.get_bind().dialect.name == "postgresql" else "instr"
    op.execute(RECIPIENTS)
    op.execute(_forwards_view(position))


def downgrade() -> None:
    op.execute("DROP VIEW mail_forwards")
    op.execute("DROP VIEW mail_recipients")
