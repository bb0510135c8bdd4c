"""Sending rate-limit tiers (configuration)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from postwerk.api.deps import CallerDep, ContextDep, pagination_headers
from postwerk.api.responses import json_response
from postwerk.api.routing import add_route
from postwerk.api.schemas import RateLimitOut
from postwerk.domain.errors import NotFound
from postwerk.domain.rate_limits import RateLimitTier
from postwerk.service.projects import require_caller
from postwerk.store.repository import Page

router = APIRouter()


def _body(tier: RateLimitTier) -> dict[str, object]:
    return {"id": tier.id, "rateLimit": tier.recipients_per_hour}


def list_mail_rate_limits(context: ContextDep, caller: CallerDep) -> Response:
    require_caller(context, caller)
    tiers = context.rate_limits.tiers
    headers = pagination_headers(Page(limit=len(tiers), skip=0), len(tiers))
    return json_response([_body(tier) for tier in tiers], 200, headers)


def get_mail_rate_limit(context: ContextDep, caller: CallerDep, mailRateLimitId: str) -> Response:
    require_caller(context, caller)
    tier = context.rate_limits.find(mailRateLimitId)
    if tier is None:
        raise NotFound("there is no such rate limit")
    return json_response(_body(tier))


add_route(
    router,
    "GET",
    "/v2/mail-rate-limits",
    list_mail_rate_limits,
    operation_id="mail-list-mail-rate-limits",
    status=200,
    model=list[RateLimitOut],
    summary="List Mail RateLimits.",
)
add_route(
    router,
    "GET",
    "/v2/mail-rate-limits/{mailRateLimitId}",
    get_mail_rate_limit,
    operation_id="mail-get-mail-rate-limit",
    status=200,
    model=RateLimitOut,
    summary="Get a Mail RateLimit.",
)
