"""Request dependencies: the service context, the caller's token, paging and sorting."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path, Query, Request
from starlette.datastructures import Headers

from postwerk.domain.text import require_safe_text
from postwerk.service import Context
from postwerk.service.access import Caller
from postwerk.store.repository import Page

MAX_LIMIT = 100_000
MAX_SKIP = 1_000_000_000

# How a request carries its token; documented in Postwerk's OpenAPI document (see `app`).
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "AccessToken": {"type": "apiKey", "in": "header", "name": "x-access-token"},
    "BearerAuthentication": {"type": "http", "scheme": "bearer"},
}


# Dependencies are `async def` on purpose: they only read the request, and a sync dependency would cost a
# thread-pool hop of its own. The one hop per request is the handler, which does all database work.
async def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


ContextDep = Annotated[Context, Depends(get_context)]


async def current_caller(request: Request) -> Caller:
    """The token as sent; the service checks it inside the request's own transaction. Read here rather than
    through FastAPI's security classes, which cost two more dependency resolutions on every request."""
    return Caller(token=token_from_headers(request.headers))


def token_from_headers(headers: Headers) -> str | None:
    """`x-access-token`, else the credentials of `Authorization: Bearer`."""
    token = headers.get("x-access-token")
    if not token:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = credentials.strip()
    return token or None


CallerDep = Annotated[Caller, Depends(current_caller)]


async def page_params(
    limit: Annotated[
        int, Query(ge=0, le=MAX_LIMIT, description="The max count of resources to return.")
    ] = 10000,
    skip: Annotated[int | None, Query(ge=0, le=MAX_SKIP, description="Number of items to skip.")] = None,
    page: Annotated[
        int | None,
        Query(ge=0, le=MAX_SKIP, description="Page to display, from 0; `skip` wins when both are set."),
    ] = None,
) -> Page:
    if skip is None:
        skip = (page or 0) * limit
    return Page(limit=limit, skip=skip)


PageDep = Annotated[Page, Depends(page_params)]


def pagination_headers(page: Page, total: int) -> dict[str, str]:
    return {
        "X-Pagination-TotalCount": str(total),
        "X-Pagination-Limit": str(page.limit),
        "X-Pagination-Skip": str(page.skip),
        "X-Pagination-Page": str(page.skip // page.limit if page.limit else 0),
    }


def search_term(text: str | None, path: str = ".search") -> str | None:
    if text is None or text == "":
        return None
    return require_safe_text(text, path, max_length=255)


MailAddressId = Annotated[UUID, Path(description="ID of the MailAddress.")]
DeliveryBoxId = Annotated[UUID, Path(description="ID of the DeliveryBox.")]
ProjectId = Annotated[str, Path(description="ID of the Project: its UUID or its short id (p-xxxxxx).")]
