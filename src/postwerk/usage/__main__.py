"""`python -m postwerk.usage --socket PATH [--group GROUP]`: the dictionary Dovecot's quota_clone writes
mailbox usage into (`usage.dict_server`). The embedded mail stack starts it under its supervisor; the
database comes from Postwerk's settings (POSTWERK_DATABASE_URL or POSTWERK_DATA_DIR)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from postwerk.dovecot_dict import READ_LIMIT
from postwerk.service_main import start_socket_service
from postwerk.store.mail_lookups import record_usage
from postwerk.store.repository import Database
from postwerk.unix_sockets import serve_unix
from postwerk.usage.dict_server import Usage, UsageCollector, handle

log = logging.getLogger("postwerk.usage")


async def _serve(socket: Path, group: str | None, database: Database) -> None:
    def write(batch: Usage) -> None:
        with database.write() as connection:
            record_usage(connection, batch)

    collector = UsageCollector(write)
    flusher = asyncio.create_task(collector.run_flusher())

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle(collector, reader, writer)

    try:
        await serve_unix(socket, on_connection, group=group, mode=0o660, log=log, limit=READ_LIMIT)
    finally:
        flusher.cancel()
        await collector.flush()  # what arrived last is not lost on a clean stop


def main(argv: Sequence[str] | None = None) -> int:
    service = start_socket_service(
        "python -m postwerk.usage",
        argv,
        client="Dovecot",
        group_help="the mail storage user's",
        pool_size=2,
    )
    asyncio.run(_serve(service.socket, service.group, service.database))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
