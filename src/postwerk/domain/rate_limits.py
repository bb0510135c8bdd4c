"""Sending rate-limit tiers: configuration, not data. Each tier's UUID is derived from its value so it is
stable across restarts, nodes and installations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

_NAMESPACE = uuid.UUID("6f1c1d7e-5b8a-4c47-9a51-2f0e6a3c9b10")

DEFAULT_TIERS = (100, 500, 1000, 5000)
DEFAULT_TIER = 500


@dataclass(frozen=True)
class RateLimitTier:
    id: str
    recipients_per_hour: int


def tier_id(recipients_per_hour: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"recipients-per-hour:{recipients_per_hour}"))


@dataclass(frozen=True)
class RateLimitCatalogue:
    tiers: tuple[RateLimitTier, ...]
    default: RateLimitTier

    @classmethod
    def from_values(cls, values: Sequence[int], default: int) -> RateLimitCatalogue:
        ordered = sorted(set(values))
        if not ordered or any(value <= 0 for value in ordered):
            raise ValueError("rate-limit tiers must be positive numbers of recipients per hour")
        if default not in ordered:
            raise ValueError(f"the default rate-limit tier {default} is not one of the tiers {ordered}")
        tiers = tuple(RateLimitTier(tier_id(value), value) for value in ordered)
        return cls(tiers=tiers, default=next(tier for tier in tiers if tier.recipients_per_hour == default))

    def find(self, tier_id_: str) -> RateLimitTier | None:
        return next((tier for tier in self.tiers if tier.id == tier_id_), None)
