"""`python -m postwerk.policy --socket PATH [--group GROUP]`: run the policy service (the embedded mail
stack starts it under its supervisor; the database comes from Postwerk's settings: POSTWERK_DATABASE_URL
or the SQLite database in POSTWERK_DATA_DIR)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from postwerk.domain.delivery_quota import Found
from postwerk.policy.service import PolicyService
from postwerk.service_main import start_socket_service
from postwerk.store.mail_lookups import find_destinations
from postwerk.unix_sockets import run_service, serve_unix

log = logging.getLogger("postwerk.policy")


def main(argv: Sequence[str] | None = None) -> int:
    service = start_socket_service(
        "python -m postwerk.policy", argv, client="Postfix", group_help="Postfix's mail_owner's", pool_size=4
    )
    database = service.database

    def lookup(keys: Sequence[str], domains: Sequence[str]) -> Found:
        return database.read_with(lambda connection: find_destinations(connection, keys, domains))

    policy = PolicyService(lookup)
    serving = serve_unix(service.socket, protocol=policy.protocol, group=service.group, mode=0o660, log=log)
    run_service(serving)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
