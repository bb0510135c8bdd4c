"""domains as Postfix asks for them: the folded U-label, unique among hosted domains

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

With SMTPUTF8 on, Postfix case-folds every lookup key in full before it asks a map, so mail written to
`bob@straße.example` is looked up as `bob@strasse.example`. The lookup views matched such keys against the
U-label as IDNA keeps it (`straße.example`), so that mail was refused as not hosted (554 5.7.1), and had
`strasse.example` been hosted too, by anyone, it would have been delivered there. Now:

- `domains.name_folded`: the U-label folded as Postfix folds it (`DomainName.folded`), with a unique
  index: two domains that fold alike are one name to Postfix, so only one of them is hosted (`postwerk
  domain add` refuses the other, naming it). The lookup views `mail_domains` and `mail_catch_alls` match
  UTF-8 keys against it (their column keeps its name, `domain_unicode`, which the Postfix maps and the
  PostgreSQL functions of migrations 0012 and 0013 query).
- `mail_addresses.domain_unicode` is renamed `domain_folded` and holds the same folded U-label, so the
  computed `unicode_key` (migration 0003), which every address lookup view matches UTF-8 keys against, is
  the key Postfix asks for.

Only names with a letter that case folding changes beyond lower case (ß, ς, a few more) differ from their
U-label; the others are copied as they are. An installation already hosting two names that fold alike stops
here with both named: one of them has to go first (`postwerk domain remove`).
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _views(domain_column: str) -> tuple[str, ...]:
    return (
        f"""
        CREATE VIEW mail_domains AS
        SELECT d.name_ascii AS domain, d.{domain_column} AS domain_unicode, d.project_id AS project_id
        FROM domains d
        """,
        f"""
        CREATE VIEW mail_catch_alls AS
        SELECT d.name_ascii AS domain, d.{domain_column} AS domain_unicode, a.lookup_key AS address
        FROM domains d JOIN mail_addresses a ON a.domain_id = d.id AND a.is_catch_all
        """,
    )


def _folded_names(connection: sa.Connection, table: str, column: str) -> dict[str, str]:
    """The U-labels in `table.column` whose folded form differs, folded (Python's `str.casefold`, as
    `DomainName.folded`; SQL has no full case folding)."""
    names = connection.execute(sa.text(f"SELECT DISTINCT {column} FROM {table}")).scalars()
    return {name: name.casefold() for name in names if name.casefold() != name}


def upgrade() -> None:
    connection = op.get_bind()
    for view in ("mail_catch_alls", "mail_domains"):
        op.execute(f"DROP VIEW {view}")

    op.add_column("domains", sa.Column("name_folded", sa.String(length=253), nullable=True))
    op.execute("UPDATE domains SET name_folded = name_unicode")
    for name, folded in _folded_names(connection, "domains", "name_unicode").items():
        connection.execute(
            sa.text("UPDATE domains SET name_folded = :folded WHERE name_unicode = :name"),
            {"folded": folded, "name": name},
        )
    hosted: dict[str, list[str]] = defaultdict(list)
    for folded, name in connection.execute(sa.text("SELECT name_folded, name_unicode FROM domains")):
        hosted[folded].append(name)
    clashes = [" and ".join(sorted(names)) for names in hosted.values() if len(names) > 1]
    if clashes:
        raise RuntimeError(
            "these hosted domains are one name to Postfix, which case-folds lookup keys (ß is ss): "
            f"{'; '.join(clashes)}. Remove all but one of each (`postwerk domain remove`), then start again."
        )
    op.execute("CREATE UNIQUE INDEX uq_domains_name_folded ON domains (name_folded)")
    op.execute("DROP INDEX ix_domains_name_unicode")
    if connection.dialect.name == "postgresql":
        op.execute("ALTER TABLE domains ALTER COLUMN name_folded SET NOT NULL")

    # A rename keeps the computed unicode_key, its index and the views on it (both databases rewrite the
    # reference); the update then recomputes the key of the rows whose domain folds differently.
    op.execute("ALTER TABLE mail_addresses RENAME COLUMN domain_unicode TO domain_folded")
    for name, folded in _folded_names(connection, "mail_addresses", "domain_folded").items():
        connection.execute(
            sa.text("UPDATE mail_addresses SET domain_folded = :folded WHERE domain_folded = :name"),
            {"folded": folded, "name": name},
        )
    for statement in _views("name_folded"):
        op.execute(statement)


def downgrade() -> None:
    for view in ("mail_catch_alls", "mail_domains"):
        op.execute(f"DROP VIEW {view}")
    op.execute("ALTER TABLE mail_addresses RENAME COLUMN domain_folded TO domain_unicode")
    # The U-label as written is the domain's.
    op.execute(
        "UPDATE mail_addresses SET domain_unicode = "
        "(SELECT d.name_unicode FROM domains d WHERE d.id = mail_addresses.domain_id) "
        "WHERE domain_unicode <> (SELECT d.name_unicode FROM domains d WHERE d.id = mail_addresses.domain_id)"
    )
    op.execute("CREATE INDEX ix_domains_name_unicode ON domains (name_unicode)")
    op.execute("DROP INDEX uq_domains_name_folded")
    op.execute("ALTER TABLE domains DROP COLUMN name_folded")
    for statement in _views("name_unicode"):
        op.execute(statement)
