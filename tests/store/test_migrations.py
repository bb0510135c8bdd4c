"""Migrations that change data, run over data: down to the revision before, and up again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, insert, text

from postwerk.domain.errors import Conflict
from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context, projects
from postwerk.store.db import alembic_config
from postwerk.store.repository import Database
from postwerk.store.tables import domains
from tests.conftest import scratch_database


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own: these tests move its schema up and down."""
    with scratch_database(request.param, tmp_path, "pw_migrate") as engine:
        yield engine


def _folded_names(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name_unicode, name_folded FROM domains"))
        return {str(name): folded for name, folded in rows}


def test_0015_folds_hosted_domains_and_keeps_a_pair_hosted_before_it(
    fresh_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Each domain gets its name as Postfix folds it; two names that fold alike, both hosted before the
    migration, stay hosted (the later one without a folded name), and the upgrade says so."""
    context = Context(Database(fresh_engine), RateLimitCatalogue.from_values([100], 100))
    project_id, _ = projects.create_project(context, "migration")
    for domain in ("straße.example", "пошта.укр", "Plain.example"):
        projects.add_domain(context, domain, project_id)
    folded = {"straße.example": "strasse.example", "пошта.укр": "пошта.укр", "plain.example": "plain.example"}
    assert _folded_names(fresh_engine) == folded

    config = alembic_config(fresh_engine)
    command.downgrade(config, "0014")
    # Hosted an hour after the others, as a release before 0015 could.
    with fresh_engine.begin() as connection:
        connection.execute(
            insert(domains).values(
                id=str(uuid.uuid4()),
                project_id=project_id,
                name_ascii="strasse.example",
                name_unicode="strasse.example",
                created_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    with caplog.at_level(logging.WARNING, logger="postwerk.migrations"):
        command.upgrade(config, "head")
    assert _folded_names(fresh_engine) == {**folded, "strasse.example": None}
    assert "straße.example, strasse.example fold alike" in caplog.text
    # The one kept without a folded name still keeps its twin out once the other has gone.
    projects.remove_domain(context, "straße.example", with_addresses=False)
    with pytest.raises(Conflict, match=r"beside strasse\.example"):
        projects.add_domain(context, "straße.example", project_id)
