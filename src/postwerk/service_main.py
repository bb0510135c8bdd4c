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

from postwerk.settings import Settings
from postwerk.store.db import create_db_engine
from postwerk.store.repository import Database


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return settings


def database_from_settings(
    pool_size: int, settings: Settings | None = None, *, pre_ping: bool = True
) -> Database:
    """Settings and logging (unless given), and the database they name. `pre_ping=False`: for callers that
    read through `Database.read_with` (which tries once more on a dead connection) and answer a failed
    write another way."""
    settings = settings or _settings()
    return Database(create_db_engine(settings.effective_database_url, pool_size=pool_size, pre_ping=pre_ping))


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
    """A service on a unix socket: `--socket PATH [--group GROUP]` (and `arguments`' own). Its database
    has no ping on checkout: every read goes through `Database.read_with`."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--socket", required=True, type=Path, help=f"unix socket {client} connects to")
    parser.add_argument("--group", help=f"group that may connect ({group_help})")
    if arguments is not None:
        arguments(parser)
    args = parser.parse_args(argv)
    settings = _settings()
    database = database_from_settings(pool_size, settings, pre_ping=False)
    return SocketService(args.socket, args.group, args, settings, database)
