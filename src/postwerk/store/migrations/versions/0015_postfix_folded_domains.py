"""hosted domains that Postfix cannot tell apart: each domain's name as Postfix folds it, unique

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

With SMTPUTF8 on, Postfix case-folds every lookup key in full before it asks a map (ICU's default folding,
as Python's `str.casefold`), so mail written in UTF-8 to `bob@straße.example` is looked up as
`bob@strasse.example`. IDNA keeps the ß (`xn--strae-oqa.example`): `straße.example` and `strasse.example`
are two domains, often of two owners, but to Postfix's maps the UTF-8 spelling of one is the other. Had
both been hosted, by any two projects, such mail to the one would have been delivered to the other.

`domains.name_folded` holds each domain's U-label folded as Postfix folds it (`DomainName.folded`), under a
unique index, so `postwerk domain add` refuses a name that folds like a hosted one. The lookup views go on
matching the U-label as IDNA keeps it, not the folded name: that would take the unhosted twin's mail
(`x@strasse.example`, sent by a customer or forwarded there) into the hosted domain. A domain with ß or
final sigma is therefore reached by its A-label or by mail that spells it so (README, "Envelope recipients").

An installation that already hosts two names that fold alike keeps both, with their lookups as they were;
the one assigned first gets the folded name, the others none (NULL, which the index admits), and the
upgrade logs a warning naming them.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

log = logging.getLogger("postwerk.migrations")


def upgrade() -> None:
    connection = op.get_bind()
    # Text: folding can make a name longer than its 253 characters (ß is ss).
    op.add_column("domains", sa.Column("name_folded", sa.Text(), nullable=True))
    by_folded: dict[str, list[tuple[str, str]]] = defaultdict(list)
    rows = connection.execute(sa.text("SELECT id, name_unicode FROM domains ORDER BY created_at, id"))
    for domain_id, name in rows:
        by_folded[name.casefold()].append((domain_id, name))
    for folded, holders in by_folded.items():
        (first_id, first_name), *others = holders
        connection.execute(
            sa.text("UPDATE domains SET name_folded = :folded WHERE id = :id"),
            {"folded": folded, "id": first_id},
        )
        if others:
            log.warning(
                "the hosted domains %s fold alike for Postfix (ß is ss to it): mail written in UTF-8 to "
                "the later ones may reach %s; remove all but one (`postwerk domain remove`)",
                ", ".join(name for _, name in holders),
                first_name,
            )
    op.execute("CREATE UNIQUE INDEX uq_domains_name_folded ON domains (name_folded)")


def downgrade() -> None:
    op.execute("DROP INDEX uq_domains_name_folded")
    op.execute("ALTER TABLE domains DROP COLUMN name_folded")
