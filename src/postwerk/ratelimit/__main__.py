"""`python -m postwerk.ratelimit --socket PATH [--group GROUP]`: run the rate-limit policy service (the
embedded mail stack and `postwerk mail-services` start it under their supervisor). The database and the
tiers come from Postwerk's settings: POSTWERK_DATABASE_URL or the SQLite database in POSTWERK_DATA_DIR,
POSTWERK_RATE_LIMIT_TIERS and POSTWERK_DEFAULT_RATE_LIMIT."""

from __future__ import annotations

from collections.abc import Sequence

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.ratelimit.service import WORKERS, RateLimiter, serve
from postwerk.service_main import start_socket_service
from postwerk.unix_sockets import run_service


def main(argv: Sequence[str] | None = None) -> int:
    service = start_socket_service(
        "python -m postwerk.ratelimit",
        argv,
        client="Postfix",
        group_help="Postfix's mail_owner's",
        pool_size=WORKERS,
    )
    settings = service.settings
    catalogue = RateLimitCatalogue.from_values(settings.rate_limit_tiers, settings.default_rate_limit)
    run_service(serve(service.socket, service.group, RateLimiter(service.database, catalogue)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
