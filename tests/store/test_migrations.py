"""Migrations that change data, run over data: down to the revision before, and up again."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context, projects
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import ADMIN
from postwerk.store.db import alembic_config
from postwerk.store.repository import Database
from tests.conftest import scratch_database


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own: these tests move its schema up and down."""
    with scratch_database(request.param, tmp_path, "pw_migrate") as engine:
        yield engine


def _keys(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT lookup_key, unicode_key FROM mail_addresses"))
        return {(str(key), str(unicode_key)) for key, unicode_key in rows}


def test_0015_folds_the_domains_as_postfix_asks_for_them(fresh_engine: Engine) -> None:
    context = Context(Database(fresh_engine), RateLimitCatalogue.from_values([100], 100))
    project_id, _ = projects.create_project(context, "migration")
    for domain in ("straße.example", "пошта.укр", "plain.example"):
        projects.add_domain(context, domain, project_id)
    for address in ("Groß@straße.example", "Пошта@пошта.укр", "bob@plain.example"):
        request = addresses.NewAddress(
            address=address,
            forward_addresses=(),
            is_catch_all=False,
            mailbox=addresses.NewMailbox(password="a long enough secret", quota_in_bytes=-1),
        )
        addresses.create(context, ADMIN, project_id, request)
    folded = {
        ("gross@xn--strae-oqa.example", "gross@strasse.example"),
        (f"пошта@{'пошта.укр'.encode('idna').decode()}", "пошта@пошта.укр"),
        ("bob@plain.example", "bob@plain.example"),
    }
    assert _keys(fresh_engine) == folded

    config = alembic_config(fresh_engine)
    command.downgrade(config, "0014")
    assert ("gross@xn--strae-oqa.example", "gross@straße.example") in _keys(fresh_engine)
    command.upgrade(config, "head")
    assert _keys(fresh_engine) == folded
    with fresh_engine.connect() as connection:
        rows = connection.execute(text("SELECT name_unicode, name_folded FROM domains"))
        names = {tuple(row) for row in rows}
    assert ("straße.example", "strasse.example") in names

    # Two hosted names that fold alike (hosted before this release refused them): the upgrade names both.
    command.downgrade(config, "0014")
    with fresh_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO domains (id, project_id, name_ascii, name_unicode, created_at) "
                "VALUES (:id, :project, 'strasse.example', 'strasse.example', :now)"
            ),
            {"id": str(uuid.uuid4()), "project": project_id, "now": datetime.now(UTC)},
        )
    with pytest.raises(RuntimeError, match=re.escape("strasse.example and straße.example")):
        command.upgrade(config, "head")
