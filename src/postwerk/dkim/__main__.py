"""`python -m postwerk.dkim --socket PATH [--group GROUP]`: the submission milter (header From: check and
DKIM signing, `postwerk.dkim.milter`). The mail stack starts it under its supervisor; the database comes
from Postwerk's settings (POSTWERK_DATABASE_URL or the SQLite database in POSTWERK_DATA_DIR)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from postwerk.dkim.milter import Lookups, SubmissionMilter, Verdict
from postwerk.dkim.signing import signature
from postwerk.service_main import start_socket_service
from postwerk.store.dkim_keys import signing_key
from postwerk.store.mail_lookups import SenderLookup
from postwerk.store.repository import Database
from postwerk.unix_sockets import run_service, serve_unix

log = logging.getLogger("postwerk.dkim")


def milter_for(database: Database) -> SubmissionMilter:
    def reading(decide: Callable[[Lookups], Verdict]) -> Verdict:
        def read(connection: Connection) -> Verdict:
            return decide(Lookups(SenderLookup(connection), lambda domain: signing_key(connection, domain)))

        return database.read_with(read)

    return SubmissionMilter(reading, sign=signature)


def main(argv: Sequence[str] | None = None) -> int:
    service = start_socket_service(
        "python -m postwerk.dkim", argv, client="Postfix", group_help="Postfix's mail_owner's", pool_size=4
    )
    milter = milter_for(service.database)
    run_service(
        serve_unix(service.socket, protocol=milter.protocol, group=service.group, mode=0o660, log=log)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
