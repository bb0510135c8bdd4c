"""One handler, several routes: the current operation, its deprecated PUT twin and the legacy paths of
the public guides all share the handler and differ only in method, path, operationId and success status."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any

import anyio.to_thread
from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from postwerk.api.deps import SECURITY_SCHEMES, CallerDep
from postwerk.api.responses import empty_response
from postwerk.api.schemas import ErrorOut, ValidationErrorsOut
from postwerk.service import Context

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ValidationErrorsOut, "description": "Validation error"},
    401: {"model": ErrorOut, "description": "Missing or invalid access token"},
    403: {"model": ErrorOut, "description": "Forbidden"},
    404: {"model": ErrorOut, "description": "Not found"},
    409: {"model": ErrorOut, "description": "Conflict"},
    413: {"model": ErrorOut, "description": "Request body too large (see `BodyLimit` in `postwerk.api.app`)"},
    503: {"model": ErrorOut, "description": "The database is not available; try again"},
}


def add_route(
    router: APIRouter,
    method: str,
    path: str,
    handler: Callable[..., Response | None],
    *,
    operation_id: str,
    status: int,
    summary: str,
    model: type[BaseModel] | Any | None = None,
    deprecated: bool = False,
    tags: list[str | Enum] | None = None,
    headers: dict[str, Any] | None = None,
    extension: bool = False,
) -> None:
    """Register `handler`; a handler that returns None answers `status` with no body.

    `extension`: an operation of Postwerk's own that mittwald's API does not have; marked
    `x-postwerk-extension: true` in Postwerk's OpenAPI document (and left out of the comparison with the
    official spec).

    Handlers are plain functions doing blocking work (database, password hashing): they run in the thread
    pool, except reads on a database whose reads may run on the event loop (`Database.reads_inline`).
    Every handler takes the service context as `context`.
    """
    reads_only = method == "GET"

    @functools.wraps(handler)
    async def endpoint(*args: Any, **kwargs: Any) -> Response:
        call = functools.partial(handler, *args, **kwargs)
        context: Context = kwargs["context"]
        result = call() if reads_only and context.db.reads_inline else await anyio.to_thread.run_sync(call)
        return empty_response(status) if result is None else result

    signature = inspect.signature(handler)
    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    authenticated = CallerDep in typing.get_type_hints(handler, include_extras=True).values()
    success: dict[str, Any] = {"description": "OK"}
    if model is not None:
        success["model"] = model
    if headers:
        success["headers"] = headers
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        operation_id=operation_id,
        status_code=status,
        summary=summary,
        deprecated=deprecated or None,
        tags=tags or ["Mail"],
        response_model=None,
        # Handlers build their responses; without this FastAPI would document a JSON body for every success,
        # even the bodiless 200 of the deprecated PUTs. Success and error bodies come from `responses`.
        response_class=Response,
        responses={status: success, **{code: doc for code, doc in _ERRORS.items() if code != status}},
        openapi_extra=_extra(authenticated, extension),
    )


EXTENSION_MARK = "x-postwerk-extension"


def _extra(authenticated: bool, extension: bool) -> dict[str, Any] | None:
    extra: dict[str, Any] = {}
    if authenticated:
        extra["security"] = [{name: []} for name in SECURITY_SCHEMES]
    if extension:
        extra[EXTENSION_MARK] = True
    return extra or None


PAGINATION_HEADERS = {
    name: {"schema": {"type": "integer"}, "description": description}
    for name, description in (
        ("X-Pagination-TotalCount", "The total number of items."),
        ("X-Pagination-Limit", "The limit used to select the items."),
        ("X-Pagination-Skip", "The number of skipped items."),
        ("X-Pagination-Page", "The page of this response, from 0."),
    )
}
