"""Wiring: from settings to a ready service context (engine, migrations, rate-limit tiers)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from postwerk.domain.dns_records import PublicHost
from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context
from postwerk.service.projects import create_token, has_tokens
from postwerk.settings import Settings
from postwerk.store.db import create_db_engine, upgrade
from postwerk.store.repository import Database

log = logging.getLogger("postwerk")


def build_context(settings: Settings, *, migrate: bool = True) -> Context:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.effective_database_url)
    if migrate:
        upgrade(engine)
    catalogue = RateLimitCatalogue.from_values(settings.rate_limit_tiers, settings.default_rate_limit)
    retried_reads = None
    if engine.dialect.name == "postgresql":
        retried_reads = create_db_engine(settings.effective_database_url, pool_size=8, pre_ping=False)
    public_host = PublicHost(settings.effective_public_hostname, settings.public_ipv4, settings.public_ipv6)
    return Context(
        db=Database(engine, retried_read_engine=retried_reads), rate_limits=catalogue, public_host=public_host
    )


def write_owner_only(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    path.chmod(0o600)


def ensure_first_admin_token(context: Context, settings: Settings) -> Path | None:
    """On an empty installation, make an admin token and keep it in an owner-only file (never printed)."""
    if has_tokens(context):
        return None
    _, token = create_token(context, admin=True, project_reference=None, read_only=False)
    write_owner_only(settings.admin_token_file, token + "\n")
    return settings.admin_token_file
