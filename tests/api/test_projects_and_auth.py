"""Projects, tokens and their scopes."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api, LiveServer, Tenant, mailbox_body, make_tenant
from tests.api.spec import SpecValidator


def test_get_project_by_uuid_or_short_id(tenant: Tenant) -> None:
    by_id = tenant.api.get(f"/v2/projects/{tenant.project_id}").json()
    by_short = tenant.api.get(f"/v2/projects/{tenant.short_id}").json()
    assert by_id == by_short
    assert by_id["id"] == tenant.project_id and by_id["shortId"] == tenant.short_id


def test_project_list(tenant: Tenant, other_tenant: Tenant, admin_api: Api) -> None:
    own = tenant.api.get("/v2/projects")
    assert [item["id"] for item in own.json()] == [tenant.project_id]
    assert own.json()[0]["customerMeta"]["id"] == own.json()[0]["customerId"]
    assert own.headers["x-pagination-totalcount"] == "1"
    found = admin_api.get("/v2/projects", params={"searchTerm": other_tenant.short_id})
    assert [item["id"] for item in found.json()] == [other_tenant.project_id]
    newest_first = admin_api.get(
        "/v2/projects", params={"sort": "createdAt", "order": "desc", "limit": 2}
    ).json()
    assert len(newest_first) == 2 and newest_first[0]["createdAt"] >= newest_first[1]["createdAt"]
    customer = own.json()[0]["customerId"]
    by_customer = admin_api.get("/v2/projects", params={"customerId": customer}).json()
    assert [item["id"] for item in by_customer] == [tenant.project_id]
    page = admin_api.get("/v2/projects", params={"limit": 1, "page": 1})
    assert page.headers["x-pagination-skip"] == "1"


def test_unknown_and_foreign_projects_are_forbidden(tenant: Tenant, other_tenant: Tenant) -> None:
    for reference in (
        other_tenant.project_id,
        other_tenant.short_id,
        "p-zzzzzz",
        "nonsense",
        "00000000-0000-0000-0000-000000000000",
    ):
        response = tenant.api.get(f"/v2/projects/{reference}")
        assert response.status_code == 403, reference
        assert response.json()["type"] == "Forbidden"


def test_missing_or_bad_token_is_401(live_server: LiveServer, tenant: Tenant) -> None:
    url = f"{live_server.base_url}/v2/projects/{tenant.project_id}/mail-addresses"
    for headers in (
        {},
        {"x-access-token": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic x"},
    ):
        response = httpx.get(url, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["type"] == "Unauthorized"
    assert httpx.get(url, headers={"Authorization": f"Bearer {tenant.token}"}, timeout=10).status_code == 200


def test_read_only_token(live_server: LiveServer, validator: SpecValidator, tenant: Tenant) -> None:
    reader = make_tenant(live_server, validator, read_only=True)
    address = reader.api.post(
        f"/v2/projects/{reader.project_id}/mail-addresses", json=mailbox_body(f"ro@{reader.domain}")
    )
    assert address.status_code == 403
    assert reader.api.get(f"/v2/projects/{reader.project_id}/mail-addresses").status_code == 200
    assert (
        reader.api.patch(
            f"/v2/projects/{reader.project_id}/mail-settings/blacklist", json={"blacklist": []}
        ).status_code
        == 403
    )
