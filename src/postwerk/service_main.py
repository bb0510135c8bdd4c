"""What every one of Postwerk's own mail services (policy, usage, tables, sweep) does first when run as
`python -m ...`: its command line, its settings (the database from POSTWERK_DATABASE_URL or the SQLite
database in POSTWERK_DATA_DIR, whatever starts it: `postwerk serve` or `postwerk mail-services`), logging,
and its database."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from postwerk.settings import Settings
from postwerk.store.db import create_db_engine
from postwerk.store.repository import Database


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return settings


# The mail services' PostgreSQL connections: no statement, connection attempt or unanswered packet may hold
# a lookup longer than this (their reads run on the event loop, see mail_service_database).
POSTGRES_LOOKUP_LIMIT_MS = 2000
_MAIL_SERVICE_POSTGRES = {
    "options": f"-c statement_timeout={POSTGRES_LOOKUP_LIMIT_MS}",
    "connect_timeout": POSTGRES_LOOKUP_LIMIT_MS // 1000,
    "tcp_user_timeout": POSTGRES_LOOKUP_LIMIT_MS,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
}


def database_from_settings(pool_size: int, settings: Settings | None = None) -> Database:
    """Settings and logging (unless given), and the database they name."""
    settings = settings or _settings()
    return Database(create_db_engine(settings.effective_database_url, pool_size=pool_size))


def mail_service_database(url: str, pool_size: int) -> Database:
    """The database of a mail service (policy, logins, tables, milter, usage, rate limits), which answers
    Postfix and Dovecot a lookup at a time, each one short indexed query:
    - no ping on checkout: reads go through `Database.read_with`, which tries once more on a dead
      connection (a lookup is one round trip, not two); writes answer a failure another way;
    - on PostgreSQL, reads run on the event loop like SQLite's: a thread hop cost ~200 µs of CPU per lookup,
      more than the lookup itself (bench/RESULTS.md), and four to six of them came with every submitted
      message. The price is that a lookup holds the service while it runs, so none may run long: each
      statement, connection attempt and unanswered packet is limited to POSTGRES_LOOKUP_LIMIT_MS, after
      which the lookup fails and the service answers as for an unreachable database (Postfix and Dovecot
      wait longer than that: 10 s for the policy, 100 s for socketmaps, 30 s for Dovecot's dict)."""
    parsed = make_url(url)
    connect_args: dict[str, Any] | None = None
    if parsed.get_backend_name() == "postgresql":
        connect_args = dict(_MAIL_SERVICE_POSTGRES)
        # Server options of the URL (`?options=-csearch_path%3D...`) are kept: connect_args replaces them.
        given = parsed.query.get("options")
        if given:
            given_text = given if isinstance(given, str) else " ".join(given)
            connect_args["options"] = f"{given_text} {connect_args['options']}"
    engine = create_db_engine(url, pool_size=pool_size, pre_ping=False, connect_args=connect_args)
    # A kept connection per thread on PostgreSQL only: SQLite's pool checkout costs next to nothing.
    return Database(engine, reads_inline=True, keeps_read_connections=engine.dialect.name == "postgresql")


@dataclass(frozen=True)
class SocketService:
    socket: Path
    group: str | None
    args: argparse.Namespace
    settings: Settings
    database: Database


def start_socket_service(
    prog: str,
    argv: Sequence[str] | None,
    *,
    client: str,
    group_help: str,
    pool_size: int,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> SocketService:
    """A service on a unix socket: `--socket PATH [--group GROUP]` (and `arguments`' own), with the database
    of `mail_service_database`."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--socket", required=True, type=Path, help=f"unix socket {client} connects to")
    parser.add_argument("--group", help=f"group that may connect ({group_help})")
    if arguments is not None:
        arguments(parser)
    args = parser.parse_args(argv)
    settings = _settings()
    database = mail_service_database(settings.effective_database_url, pool_size)
    return SocketService(args.socket, args.group, args, settings, database)
