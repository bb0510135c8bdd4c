"""The hot reads (`postwerk.api.hot_paths`) answer exactly as the FastAPI handlers do, and answer plain
requests themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from postwerk.api.hot_paths import HotReads
from postwerk.service import projects as project_service
from postwerk.store.repository import Database
from tests.api.conftest import LiveServer, Tenant, mailbox_body, serving
from tests.conftest import unpinged_engine

COMPARED_HEADERS = (
    "content-type",
    "content-length",
    "x-pagination-totalcount",
    "x-pagination-limit",
    "x-pagination-skip",
    "x-pagination-page",
)


@pytest.fixture
def without_hot_reads(live_server: LiveServer) -> Iterator[str]:
    with serving(live_server.context, hot_reads=False) as base_url:
        yield base_url


@pytest.fixture
def addresses(tenant: Tenant) -> list[str]:
    ids = []
    for local in ("b", "a", "c"):
        response = tenant.api.post(
            f"/v2/projects/{tenant.project_id}/mail-addresses", json=mailbox_body(f"{local}@{tenant.domain}")
        )
        ids.append(response.json()["id"])
    forward = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        json={"address": f"fwd@{tenant.idn_domain}", "forwardAddresses": ["x@elsewhere.example"]},
    )
    ids.append(forward.json()["id"])
    return ids


def _requests(
    tenant: Tenant, other: Tenant, live_server: LiveServer, ids: list[str]
) -> list[tuple[str, dict[str, str]]]:
    own = {"x-access-token": tenant.token}
    bearer = {"Authorization": f"Bearer {tenant.token}"}
    admin = {"x-access-token": live_server.admin_token}
    foreign = {"x-access-token": other.token}
    listing = f"/v2/projects/{tenant.project_id}/mail-addresses"
    return [
        (f"/v2/mail-addresses/{ids[0]}", own),
        (f"/v2/mail-addresses/{ids[3]}", bearer),
        (f"/v2/mail-addresses/{ids[0]}", admin),
        (f"/v2/mail-addresses/{ids[0]}", foreign),
        (f"/v2/mail-addresses/{ids[0]}", {}),
        (f"/v2/mail-addresses/{ids[0]}", {"x-access-token": "pw_wrong"}),
        (f"/v2/mail-addresses/{ids[0].upper()}", own),
        (f"/v2/mail-addresses/{ids[0]}?x=1", own),
        ("/v2/mail-addresses/00000000-0000-4000-8000-000000000000", own),
        (listing, own),
        (listing, admin),
        (listing, foreign),
        (listing, {}),
        (f"/v2/projects/{tenant.short_id}/mail-addresses", own),
        ("/v2/projects/p-nosuch/mail-addresses", own),
        (f"{listing}?limit=2", own),
        (f"{listing}?limit=2&skip=1", own),
        (f"{listing}?limit=2&page=1", own),
        (f"{listing}?limit=2&page=1&skip=3", own),
        (f"{listing}?limit=0", own),
        (f"{listing}?skip=10", own),
        (f"{listing}?search=fwd", own),
        (f"{listing}?search=", own),
        (f"{listing}?search=%00", own),
        (f"{listing}?search={'x' * 256}", own),
        (f"{listing}?forwardAddress=true", own),
        (f"{listing}?catchAll=false&autoResponder=false&mailArchive=false", own),
        (f"{listing}?mailArchive=true", own),
        (f"{listing}?forwardAddress=yes", own),
        (f"{listing}?sort=address.local&order=desc", own),
        (f"{listing}?sort=address.local&sort=updatedAt&order=asc&order=desc", own),
        (f"{listing}?sort=nonsense", own),
        (f"{listing}?limit=-1", own),
        (f"{listing}?limit=100001", own),
        (f"{listing}?unknown=1", own),
    ]


def test_hot_reads_answer_as_fastapi_does(
    live_server: LiveServer,
    tenant: Tenant,
    other_tenant: Tenant,
    addresses: list[str],
    without_hot_reads: str,
) -> None:
    with (
        httpx.Client(base_url=live_server.base_url, timeout=10) as hot,
        httpx.Client(base_url=without_hot_reads, timeout=10) as plain,
    ):
        own = {"x-access-token": tenant.token}
        for path, headers in _requests(tenant, other_tenant, live_server, addresses):
            expected, got = plain.get(path, headers=headers), hot.get(path, headers=headers)
            assert (got.status_code, got.content) == (expected.status_code, expected.content), path
            for name in COMPARED_HEADERS:
                assert got.headers.get(name) == expected.headers.get(name), (path, name)
        missing = hot.get("/v2/mail-addresses/00000000-0000-4000-8000-000000000000", headers=own)
        assert missing.status_code == 404 and missing.json()["type"] == "NotFound"


async def _no_fastapi(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError(f"{scope['path']} was not answered by the hot path")


def test_plain_reads_are_answered_without_fastapi(
    live_server: LiveServer, tenant: Tenant, addresses: list[str]
) -> None:
    asyncio.run(_plain_reads(live_server, tenant, addresses))


async def _plain_reads(live_server: LiveServer, tenant: Tenant, addresses: list[str]) -> None:
    transport = httpx.ASGITransport(app=HotReads(_no_fastapi, live_server.context))
    headers = {"x-access-token": tenant.token}
    async with httpx.AsyncClient(transport=transport, base_url="http://hot") as client:
        one = await client.get(f"/v2/mail-addresses/{addresses[0]}", headers=headers)
        assert one.status_code == 200 and one.json()["id"] == addresses[0]
        listed = await client.get(
            f"/v2/projects/{tenant.short_id}/mail-addresses?limit=2&sort=address.local&order=desc",
            headers=headers,
        )
        assert [item["address"] for item in listed.json()] == [
            f"fwd@{tenant.idn_domain}",
            f"c@{tenant.domain}",
        ]
        assert listed.headers["x-pagination-totalcount"] == "4"


def test_a_revoked_token_is_refused_on_the_hot_path(
    live_server: LiveServer, tenant: Tenant, addresses: list[str]
) -> None:
    token_id, token = project_service.create_token(
        live_server.context, admin=False, project_reference=tenant.project_id, read_only=True
    )
    url = f"{live_server.base_url}/v2/mail-addresses/{addresses[0]}"
    assert httpx.get(url, headers={"x-access-token": token}, timeout=10).status_code == 200
    project_service.revoke_token(live_server.context, token_id)
    assert httpx.get(url, headers={"x-access-token": token}, timeout=10).status_code == 401


def test_a_dropped_connection_of_the_unpinged_pool_costs_no_failed_request(
    live_server: LiveServer, tenant: Tenant, addresses: list[str]
) -> None:
    engine = live_server.context.db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    unpinged = unpinged_engine(engine, "postwerk-hot-test")
    context = replace(live_server.context, db=Database(engine, retried_read_engine=unpinged))
    url = f"/v2/mail-addresses/{addresses[0]}"
    try:
        with serving(context) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
            headers = {"x-access-token": tenant.token}
            assert client.get(url, headers=headers).status_code == 200
            with engine.begin() as connection:
                dropped = connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = 'postwerk-hot-test'"
                    )
                ).scalar_one()
            assert dropped >= 1
            again = client.get(url, headers=headers)
            assert again.status_code == 200 and again.json()["id"] == addresses[0]
    finally:
        unpinged.dispose()
