"""Lists: pagination headers, limit/skip/page, search, filters and sort, for projects and across them."""

from __future__ import annotations

from tests.api.conftest import Api, Tenant, mailbox_body


def seed(tenant: Tenant) -> dict[str, str]:
    ids = {}
    for local in ("carol", "alice", "bob"):
        body = mailbox_body(f"{local}@{tenant.domain}")
        ids[local] = tenant.api.post(f"/v2/projects/{tenant.project_id}/mail-addresses", json=body).json()[
            "id"
        ]
    ids["fwd"] = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        json={
            "address": f"zed@{tenant.idn_domain}",
            "forwardAddresses": ["x@elsewhere.example"],
            "isCatchAll": True,
        },
    ).json()["id"]
    return ids


def addresses(api: Api, url: str, **params: object) -> tuple[list[str], dict[str, str]]:
    response = api.get(url, params=params)
    assert response.status_code == 200, response.text
    return [item["address"].split("@")[0] for item in response.json()], dict(response.headers)


def test_pagination_headers_and_paging(tenant: Tenant) -> None:
    seed(tenant)
    url = f"/v2/projects/{tenant.project_id}/mail-addresses"
    names, headers = addresses(tenant.api, url)
    assert headers["x-pagination-totalcount"] == "4"
    assert headers["x-pagination-limit"] == "10000"
    assert headers["x-pagination-skip"] == "0"
    assert headers["x-pagination-page"] == "0"
    assert [name for name in names if name != "zed"] == ["alice", "bob", "carol"]  # zed: the IDN domain
    first, _ = addresses(tenant.api, url, limit=2)
    second, headers = addresses(tenant.api, url, limit=2, page=1)
    assert headers["x-pagination-skip"] == "2" and headers["x-pagination-page"] == "1"
    assert len(first) == len(second) == 2 and not set(first) & set(second)
    skipped, headers = addresses(tenant.api, url, limit=2, skip=1, page=5)  # skip wins over page
    assert headers["x-pagination-skip"] == "1"
    assert skipped[0] == first[1]
    empty, headers = addresses(tenant.api, url, limit=0)
    assert empty == [] and headers["x-pagination-totalcount"] == "4"


def test_search_and_filters(tenant: Tenant) -> None:
    ids = seed(tenant)
    url = f"/v2/projects/{tenant.project_id}/mail-addresses"
    assert addresses(tenant.api, url, search="LIC")[0] == ["alice"]
    assert addresses(tenant.api, url, search=ids["bob"])[0] == ["bob"]
    assert addresses(tenant.api, url, search="100%_")[0] == []
    assert addresses(tenant.api, url, forwardAddress="true")[0] == ["zed"]
    assert sorted(addresses(tenant.api, url, forwardAddress="false")[0]) == ["alice", "bob", "carol"]
    assert addresses(tenant.api, url, catchAll="true")[0] == ["zed"]
    assert addresses(tenant.api, url, mailArchive="true")[0] == []
    assert addresses(tenant.api, url, autoResponder="true")[0] == []
    tenant.api.patch(
        f"/v2/mail-addresses/{ids['carol']}/autoresponder",
        json={"autoResponder": {"active": True, "message": "away"}},
    )
    assert addresses(tenant.api, url, autoResponder="true")[0] == ["carol"]


def test_sorting_pairs_sort_and_order(tenant: Tenant) -> None:
    seed(tenant)
    url = f"/v2/projects/{tenant.project_id}/mail-addresses"
    descending, _ = addresses(tenant.api, url, sort="address.local", order="desc")
    assert descending == ["zed", "carol", "bob", "alice"]
    response = tenant.api.get(
        url,
        params=[("sort", "address.domain"), ("sort", "address.local"), ("order", "asc"), ("order", "desc")],
    )
    by_domain = [item["address"] for item in response.json()]
    ascii_first = [a for a in by_domain if a.endswith(tenant.domain)]
    assert [a.split("@")[0] for a in ascii_first] == ["carol", "bob", "alice"]
    assert tenant.api.get(url, params={"sort": "nonsense"}).status_code == 400


def test_list_for_user_spans_the_tokens_projects(
    tenant: Tenant, other_tenant: Tenant, admin_api: Api
) -> None:
    seed(tenant)
    seed(other_tenant)
    mine = tenant.api.get("/v2/mail-addresses/").json()
    assert {item["projectId"] for item in mine} == {tenant.project_id}
    assert len(mine) == 4
    filtered = admin_api.get("/v2/mail-addresses/", params={"projectId": other_tenant.short_id})
    assert {item["projectId"] for item in filtered.json()} == {other_tenant.project_id}
    everything = admin_api.get("/v2/mail-addresses/", params={"search": tenant.domain})
    assert {item["projectId"] for item in everything.json()} == {tenant.project_id}
    assert (
        tenant.api.get("/v2/mail-addresses/", params={"projectId": other_tenant.project_id}).status_code
        == 403
    )


def test_invalid_paging_is_a_validation_error(tenant: Tenant) -> None:
    url = f"/v2/projects/{tenant.project_id}/mail-addresses"
    for params in ({"limit": -1}, {"skip": "x"}, {"page": -2}):
        response = tenant.api.get(url, params=params)
        assert response.status_code == 400
        assert response.json()["type"] == "ValidationError"
