"""Use cases: what the API, the CLI and the policy service ask of Postwerk. Each runs the domain's rules,
then one short transaction. Password hashing always happens before the transaction opens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

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
