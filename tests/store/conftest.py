"""A project with a hosted domain, made through the service layer, on each database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context, projects
from postwerk.store.repository import Database


@dataclass(frozen=True)
class HostedProject:
    context: Context
    project_id: str
    domain: str


@pytest.fixture
def hosted(engine: Engine) -> HostedProject:
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))
    project_id, short_id = projects.create_project(context, "store test")
    domain = f"{short_id.removeprefix('p-')}.store.example"
    projects.add_domain(context, domain, project_id)
    return HostedProject(context, project_id, domain)
