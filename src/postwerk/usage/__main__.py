"""`python -m postwerk.usage --socket PATH [--group GROUP]`: the dictionary Dovecot's quota plugin keeps
mailbox usage in (`usage.dict_server`). The embedded mail stack starts it under its supervisor; the
database comes from Postwerk's settings (POSTWERK_DATABASE_URL or POSTWERK_DATA_DIR)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from postwerk.service_main import start_socket_service
from postwerk.store.repository import Database, update_usage
from postwerk.unix_sockets import run_service, serve_unix
from postwerk.usage.dict_server import Changes, UsageCollector, protocol_factory

log = logging.getLogger("postwerk.usage")


async def _serve(socket: Path, group: str | None, database: Database) -> None:
    def write(batch: Changes) -> None:
        changes = {mailbox_id: (change.total, change.delta) for mailbox_id, change in batch.items()}
        with database.write_statement() as connection:
            update_usage(connection, changes, datetime.now(UTC))

    collector = UsageCollector(write)
    writer = asyncio.create_task(collector.run_writer())
    try:
        await serve_unix(socket, protocol=protocol_factory(collector), group=group, mode=0o660, log=log)
    finally:
        writer.cancel()
        await collector.write()  # what arrived last is not lost on a clean stop


def main(argv: Sequence[str] | None = None) -> int:
    service = start_socket_service(
        "python -m postwerk.usage",
        argv,
        client="Dovecot",
        group_help="the mail storage user's",
        pool_size=2,
    )
    run_service(_serve(service.socket, service.group, service.database))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
