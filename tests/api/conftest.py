"""A real Postwerk API server on a loopback port for each database, and a client that checks every
response against the official spec."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postwerk.api.app import create_app
from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.loopback import free_loopback_port
from postwerk.service import Context
from postwerk.service import projects as project_service
from postwerk.store.repository import Database
from tests.api.spec import SpecValidator
from tests.conftest import remember_passwords

SERVER_START_TIMEOUT = 15.0


def free_port() -> int:
    return free_loopback_port()


@dataclass
class LiveServer:
    base_url: str
    context: Context
    admin_token: str
    backend: str


class PasswordRecorder:
    """Wraps the app under test to learn every password the suite sends (`no_password_in_any_log_line`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    remember_passwords(b"".join(chunks))
            return message

        await self.app(scope, recording_receive if scope["type"] == "http" else receive, send)


@contextmanager
def serving(context: Context, *, hot_reads: bool = True) -> Iterator[str]:
    """Postwerk's app for `context` under uvicorn on a free loopback port; yields its base URL."""
    app = PasswordRecorder(create_app(context, max_request_bytes=1024 * 1024, hot_reads=hot_reads))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="debug"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(engine: Engine) -> Iterator[LiveServer]:
    context = Context(Database(engine), RateLimitCatalogue.from_values([100, 500, 1000, 5000], 500))
    with serving(context) as base_url:
        _, token = project_service.create_token(context, admin=True, project_reference=None, read_only=False)
        yield LiveServer(base_url, context, token, engine.dialect.name)


@pytest.fixture(scope="session")
def validator(live_server: LiveServer, spec_path: Path) -> SpecValidator:
    document = httpx.get(f"{live_server.base_url}/v2/openapi.json", timeout=10).json()
    return SpecValidator.load(spec_path, document)


class Api:
    """httpx with a token; every response is checked against the official schema of its operation."""

    def __init__(self, server: LiveServer, validator: SpecValidator, token: str | None) -> None:
        self.server = server
        self.validator = validator
        headers = {"x-access-token": token} if token else {}
        self.client = httpx.Client(base_url=server.base_url, headers=headers, timeout=30)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, path, **kwargs)
        self.validator.validate(
            method, response.request.url.path, response.status_code, response.content, response.headers
        )
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@dataclass
class Tenant:
    """A project with its own domains and a token for it."""

    project_id: str
    short_id: str
    domain: str
    idn_domain: str
    api: Api
    token: str


@pytest.fixture
def admin_api(live_server: LiveServer, validator: SpecValidator) -> Iterator[Api]:
    api = Api(live_server, validator, live_server.admin_token)
    yield api
    api.client.close()


def make_tenant(live_server: LiveServer, validator: SpecValidator, *, read_only: bool = False) -> Tenant:
    context = live_server.context
    project_id, short_id = project_service.create_project(context, "test project")
    suffix = short_id.removeprefix("p-")
    domain = f"{suffix}.example.org"
    idn_domain = f"пошта-{suffix}.укр"
    project_service.add_domain(context, domain, project_id)
    project_service.add_domain(context, idn_domain, project_id)
    _, token = project_service.create_token(
        context, admin=False, project_reference=project_id, read_only=read_only
    )
    return Tenant(project_id, short_id, domain, idn_domain, Api(live_server, validator, token), token)


@pytest.fixture
def tenant(live_server: LiveServer, validator: SpecValidator) -> Iterator[Tenant]:
    created = make_tenant(live_server, validator)
    yield created
    created.api.client.close()


@pytest.fixture
def other_tenant(live_server: LiveServer, validator: SpecValidator) -> Iterator[Tenant]:
    created = make_tenant(live_server, validator)
    yield created
    created.api.client.close()


def mailbox_body(address: str, password: str = "correct horse battery", **extra: Any) -> dict[str, Any]:
    return {
        "address": address,
        "isCatchAll": False,
        "mailbox": {"password": password, "quotaInBytes": 2 * 1024**3, "enableSpamProtection": True},
        **extra,
    }
