"""Use cases: what the API, the CLI and the policy service ask of Postwerk. Each runs the domain's rules,
then one short transaction. Password hashing always happens before the transaction opens."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from postwerk.domain.dns_records import PublicHost
from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.store.repository import Database


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Context:
    db: Database
    rate_limits: RateLimitCatalogue
    # What the DNS records of hosted domains name (`--public-hostname`, `--public-ipv4`, `--public-ipv6`).
    public_host: PublicHost = field(default_factory=lambda: PublicHost(socket.gethostname().lower()))
