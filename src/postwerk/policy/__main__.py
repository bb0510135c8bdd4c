"""`python -m postwerk.policy --socket PATH [--group GROUP]`: run the policy service (the embedded mail
stack starts it under its supervisor; the database comes from Postwerk's settings: POSTWERK_DATABASE_URL
or the SQLite database in POSTWERK_DATA_DIR)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from postwerk.domain.delivery_quota import Found
from postwerk.policy.service import PolicyService
from postwerk.settings import Settings
from postwerk.store.db import create_db_engine
from postwerk.store.mail_lookups import find_destinations
from postwerk.store.repository import Database
from postwerk.unix_sockets import serve_unix

log = logging.getLogger("postwerk.policy")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postwerk.policy")
    parser.add_argument("--socket", required=True, type=Path, help="unix socket Postfix connects to")
    parser.add_argument("--group", help="group that may connect (Postfix's mail_owner's)")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    database = Database(create_db_engine(settings.effective_database_url, pool_size=4))

    def lookup(keys: Sequence[str], domains: Sequence[str]) -> Found:
        with database.read() as connection:
            return find_destinations(connection, keys, domains)

    service = PolicyService(lookup, lookup_inline=database.reads_inline)
    asyncio.run(serve_unix(args.socket, service.handle, group=args.group, mode=0o660, log=log))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
