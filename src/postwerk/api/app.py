"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postwerk import __version__
from postwerk.api.deps import SECURITY_SCHEMES
from postwerk.api.errors import error_response, install_error_handlers
from postwerk.api.hot_paths import HotReads
from postwerk.api.routers import (
    delivery_boxes,
    mail_addresses,
    mail_domains,
    mail_settings,
    projects,
    rate_limits,
)
from postwerk.service import Context
from postwerk.settings import Settings

DEFAULT_WORKER_THREADS: int = Settings.model_fields["api_threads"].default

DESCRIPTION = """
Postwerk's mail API: wire-compatible with the mail part of the mittwald mStudio API v2 (same paths,
operationIds, bodies, status codes, error bodies and pagination headers). Routes of the public guides that
mittwald only redirects are answered directly; their operationIds are `legacy-<operationId>`.
Operations of Postwerk's own (tag "Postwerk extensions", `x-postwerk-extension: true`) have no mittwald
counterpart: `GET /v2/projects/{projectId}/mail-domains` lists a project's domains with their DNS records.
Authenticate with `x-access-token: <token>` or `Authorization: Bearer <token>`.
"""


class BodyLimit:
    """Refuse request bodies over the limit with 413 before the application reads them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._too_large(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "PayloadTooLarge", f"the request body exceeds {self.max_bytes} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _thread_limit(threads: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Handlers (database work, password hashing) run in this pool. A few threads keep both cores
        # busy; dozens only fight over the GIL (measured in bench/api.py, see bench/RESULTS.md).
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    return lifespan


def create_app(
    context: Context,
    *,
    max_request_bytes: int = 1024 * 1024,
    worker_threads: int = DEFAULT_WORKER_THREADS,
    hot_reads: bool = True,
    **fastapi_options: Any,
) -> FastAPI:
    # The docs page ships its own Swagger UI files: a mail server's host often has no way to a CDN.
    app = FastAPIOffline(
        static_url="/v2/docs/static",
        title="Postwerk mail API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/v2/openapi.json",
        lifespan=_thread_limit(worker_threads),
        docs_url="/v2/docs",
        redoc_url=None,
        **fastapi_options,
    )
    app.state.context = context
    install_error_handlers(app)
    for module in (mail_addresses, delivery_boxes, mail_settings, rate_limits, projects, mail_domains):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    if hot_reads:
        app.add_middleware(HotReads, context=context)
    app.openapi = _finished_document(app.openapi)  # type: ignore[method-assign]
    return app


def _finished_document(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI documents a 422 `HTTPValidationError` for every operation with parameters, but Postwerk
    answers invalid requests with mittwald's 400 `ValidationError` (see `errors`) and never with 422.
    The security schemes are added here because the token is read without FastAPI's security classes
    (`deps.current_caller`); each operation that takes it names them (`routing.add_route`)."""

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI caches it; stripping it again changes nothing
        for item in document.get("paths", {}).values():
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)
        components = document.setdefault("components", {})
        schemas = components.get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        components["securitySchemes"] = SECURITY_SCHEMES
        return document

    return openapi
