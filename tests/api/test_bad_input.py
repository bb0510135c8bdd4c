"""Hostile and broken input: always a 4xx with a mittwald error body, never a 500 or a stack trace."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import Tenant, mailbox_body


def post_raw(
    tenant: Tenant, content: bytes, content_type: str = "application/json"
) -> tuple[int, dict[str, object]]:
    response = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        content=content,
        headers={"content-type": content_type},
    )
    body = response.json()
    assert "Traceback" not in response.text
    return response.status_code, body


@pytest.mark.parametrize(
    "address", ["a\u0000b@{domain}", "\u0007bell@{domain}", "x@{domain}\u0000", " x@{domain}", "x@{domain}\n"]
)
def test_control_characters_are_refused(tenant: Tenant, address: str) -> None:
    status, body = post_raw(tenant, json.dumps(mailbox_body(address.format(domain=tenant.domain))).encode())
    assert status == 400 and body["type"] == "ValidationError"


def test_lone_surrogates_and_invalid_utf8(tenant: Tenant) -> None:
    escaped = b'{"address": "\\ud800@x.example", "forwardAddresses": ["a@b.example"]}'
    assert post_raw(tenant, escaped)[0] == 400
    assert post_raw(tenant, b'{"address": "\xff\xfe@x.example"}')[0] == 400
    password = mailbox_body(f"sur@{tenant.domain}", password="\ud800\udfff-ok-but-lone-\udc00")
    raw = json.dumps(password).encode()
    assert post_raw(tenant, raw)[0] == 400


def test_nul_in_other_fields(tenant: Tenant) -> None:
    box = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/delivery-boxes",
        json={"description": "a\u0000b", "password": "a strong secret"},
    )
    assert box.status_code == 400
    search = tenant.api.get(f"/v2/projects/{tenant.project_id}/mail-addresses", params={"search": "a\u0000"})
    assert search.status_code == 400
    project = tenant.api.get("/v2/projects/%00")
    assert project.status_code == 403
    mailbox = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        json=mailbox_body(f"nul@{tenant.domain}", password="pass\u0000word-long"),
    )
    assert mailbox.status_code == 400


def test_malformed_and_deep_bodies(tenant: Tenant) -> None:
    assert post_raw(tenant, b"{not json")[0] == 400
    assert post_raw(tenant, b"")[0] == 400
    assert post_raw(tenant, b"[]")[0] == 400
    assert post_raw(tenant, b"null")[0] == 400
    assert post_raw(tenant, b"[" * 100_000 + b"]" * 100_000)[0] == 400
    nested = b'{"address": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert post_raw(tenant, nested)[0] == 400
    assert post_raw(tenant, b"address=x", "application/x-www-form-urlencoded")[0] == 400


def test_huge_bodies_are_413(tenant: Tenant) -> None:
    huge = json.dumps(mailbox_body(f"big@{tenant.domain}", password="x" * 2_000_000)).encode()
    status, body = post_raw(tenant, huge)
    assert status == 413 and body["type"] == "PayloadTooLarge"
    long_password = mailbox_body(f"big@{tenant.domain}", password="x" * 5000)
    assert (
        tenant.api.post(f"/v2/projects/{tenant.project_id}/mail-addresses", json=long_password).status_code
        == 400
    )


def test_huge_numbers_and_wrong_types(tenant: Tenant) -> None:
    url = f"/v2/projects/{tenant.project_id}/mail-addresses"
    for quota in (10**30, -(10**30), 1.5, True, None, "1"):
        body = mailbox_body(f"num@{tenant.domain}")
        body["mailbox"]["quotaInBytes"] = quota  # type: ignore[index]
        assert tenant.api.post(url, json=body).status_code == 400, quota
    assert tenant.api.get(url, params={"limit": 10**30}).status_code == 400
    assert tenant.api.get(url, params={"page": 10**12, "limit": 10**5}).status_code == 400
