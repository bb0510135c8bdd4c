"""`python -m postwerk.logins --socket PATH [--group GROUP]`: the dictionary Dovecot's passdb asks for a
login's password hash and mailbox (`logins.dict_server`). The embedded mail stack starts it under its
supervisor; the database comes from Postwerk's settings (POSTWERK_DATABASE_URL or POSTWERK_DATA_DIR)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from postwerk.domain.submission import Account
from postwerk.logins.dict_server import LoginDictionary
from postwerk.service_main import start_socket_service
from postwerk.store.mail_lookups import find_delivery_box_login, find_login
from postwerk.unix_sockets import run_service, serve_unix

log = logging.getLogger("postwerk.logins")


def main(argv: Sequence[str] | None = None) -> int:
    service = start_socket_service(
        "python -m postwerk.logins",
        argv,
        client="Dovecot's auth",
        group_help="the database group: it reads hashes",
        pool_size=4,
    )
    database = service.database

    def lookup(key: str) -> tuple[str, str | None] | None:
        return database.read_with(lambda connection: find_login(connection, key))

    def box_lookup(name: str) -> tuple[Account, str | None] | None:
        return database.read_with(lambda connection: find_delivery_box_login(connection, name))

    dictionary = LoginDictionary(lookup, box_lookup=box_lookup)

    run_service(
        serve_unix(service.socket, protocol=dictionary.protocol, group=service.group, mode=0o660, log=log)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
