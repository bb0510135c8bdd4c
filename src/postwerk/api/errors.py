"""The one mapping from errors to mittwald wire bodies and status codes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from postwerk.api.responses import json_response
from postwerk.domain.errors import DomainError, ErrorKind, FieldIssue, ValidationFailed

log = logging.getLogger("postwerk.api")

_STATUS = {
    ErrorKind.VALIDATION: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
}
_TYPE = {
    ErrorKind.UNAUTHORIZED: "Unauthorized",
    ErrorKind.FORBIDDEN: "Forbidden",
    ErrorKind.NOT_FOUND: "NotFound",
    ErrorKind.CONFLICT: "Conflict",
}
_HTTP_TYPES = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 415: "UnsupportedMediaType"}


def error_response(status: int, type_: str, message: str) -> Response:
    return json_response({"type": type_, "message": message}, status)


def validation_response(issues: Sequence[FieldIssue]) -> Response:
    return json_response(
        {
            "type": "ValidationError",
            "message": "Validation failed",
            "validationErrors": [
                {"message": issue.message, "path": issue.path, "type": issue.type, "context": issue.context}
                for issue in issues
            ],
        },
        400,
    )


def _js_path(location: Sequence[int | str]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


# pydantic error types and the JSON-schema keyword (ajv's vocabulary) mittwald clients expect instead.
_KEYWORDS = {
    "missing": "required",
    "greater_than_equal": "minimum",
    "greater_than": "exclusiveMinimum",
    "less_than_equal": "maximum",
    "less_than": "exclusiveMaximum",
    "string_too_long": "maxLength",
    "string_too_short": "minLength",
    "too_long": "maxItems",
    "too_short": "minItems",
    "literal_error": "enum",
    "enum": "enum",
    "uuid_parsing": "format",
    "uuid_type": "format",
    "datetime_parsing": "format",
    "datetime_from_date_parsing": "format",
    "datetime_type": "format",
    "json_invalid": "format",
    "string_pattern_mismatch": "pattern",
    "value_error": "format",
    "extra_forbidden": "additionalProperties",
}
_JSON_TYPES = {
    "int": "integer",
    "bool": "boolean",
    "string": "string",
    "list": "array",
    "dict": "object",
    "model": "object",
    "float": "number",
    "none": "null",
}


def _issue_from_pydantic(error: dict[str, Any]) -> FieldIssue:
    location = [part for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    kind = str(error.get("type", "type"))
    message = str(error.get("msg", "invalid value"))
    context = {key: str(value) for key, value in (error.get("ctx") or {}).items() if key != "error"}
    if kind == "json_invalid":  # its location is a character offset, not a field
        return FieldIssue("", f"the body is not valid JSON: {message}", "format", {"format": "json"})
    if kind == "missing" and not location:
        return FieldIssue("", "a JSON request body is required", "required", {})
    if kind == "missing":
        return FieldIssue(
            _js_path(location[:-1]),
            f"must have required property '{location[-1]}'",
            "required",
            {"missingProperty": str(location[-1])},
        )
    if kind in _KEYWORDS:
        keyword = _KEYWORDS[kind]
        if kind.startswith("uuid"):
            context = {"format": "uuid"}
        elif kind.startswith("datetime"):
            context = {"format": "date-time"}
        return FieldIssue(_js_path(location), message, keyword, context)
    prefix = kind.split("_", 1)[0]
    if kind.endswith(("_type", "_parsing")) and prefix in _JSON_TYPES:
        return FieldIssue(
            _js_path(location), f"must be {_JSON_TYPES[prefix]}", "type", {"type": _JSON_TYPES[prefix]}
        )
    return FieldIssue(_js_path(location), message, kind, context)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, error: DomainError) -> Response:
        if isinstance(error, ValidationFailed):
            return validation_response(error.issues)
        return error_response(_STATUS[error.kind], _TYPE[error.kind], error.message)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, error: RequestValidationError) -> Response:
        return validation_response([_issue_from_pydantic(dict(item)) for item in error.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 400:  # an unreadable body (FastAPI's own parse failure)
            return validation_response(
                [FieldIssue("", "the body is not valid JSON", "format", {"format": "json"})]
            )
        type_ = _HTTP_TYPES.get(error.status_code, "Error")
        message = "no such route" if error.status_code == 404 else str(error.detail)
        return error_response(error.status_code, type_, message)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, error: OperationalError) -> Response:
        # The database is down, unreachable or locked past the busy timeout: a condition that passes, so
        # the answer says "try again" (clients retry 503) instead of claiming a server fault.
        log.error(
            "database unavailable on %s %s: %s", request.method, request.url.path, type(error.orig).__name__
        )
        return error_response(503, "ServiceUnavailable", "the database is not available; try again shortly")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.error(
            "unexpected error on %s %s: %s",
            request.method,
            request.url.path,
            type(error).__name__,
            exc_info=error,
        )
        return error_response(500, "InternalServerError", "an unexpected error occurred")
