"""`python -m postwerk.logins --socket PATH [--group GROUP]`: the dictionary Dovecot's passdb asks for a
login's password hash and mailbox (`logins.dict_server`). The embedded mail stack starts it under its
supervisor; the database comes from Postwerk's settings (POSTWERK_DATABASE_URL or POSTWERK_DATA_DIR)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from postwerk.domain.submission import Account
from postwerk.dovecot_dict import READ_LIMIT
from postwerk.logins.dict_server import LoginDictionary, handle
from postwerk.settings import Settings
from postwerk.store.db import create_db_engine
from postwerk.store.mail_lookups import find_delivery_box_login, find_login
from postwerk.store.repository import Database
from postwerk.unix_sockets import serve_unix

log = logging.getLogger("postwerk.logins")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postwerk.logins")
    parser.add_argument("--socket", required=True, type=Path, help="unix socket Dovecot's auth connects to")
    parser.add_argument("--group", help="group that may connect (the database group: it reads hashes)")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    database = Database(create_db_engine(settings.effective_database_url, pool_size=4))

    def lookup(key: str) -> tuple[str, str | None] | None:
        with database.read() as connection:
            return find_login(connection, key)

    def box_lookup(name: str) -> tuple[Account, str | None] | None:
        with database.read() as connection:
            return find_delivery_box_login(connection, name)

    dictionary = LoginDictionary(lookup, inline=database.reads_inline, box_lookup=box_lookup)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle(dictionary, reader, writer)

    asyncio.run(
        serve_unix(args.socket, on_connection, group=args.group, mode=0o660, log=log, limit=READ_LIMIT)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
