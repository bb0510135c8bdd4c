"""Mail addresses through the current routes: create, read, list, every update, delete."""

from __future__ import annotations

import uuid

from tests.api.conftest import Tenant, mailbox_body


def create(tenant: Tenant, body: dict[str, object]) -> str:
    response = tenant.api.post(f"/v2/projects/{tenant.project_id}/mail-addresses", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_mailbox_round_trip(tenant: Tenant) -> None:
    address = f"Info@{tenant.domain}"
    address_id = create(tenant, mailbox_body(address))
    got = tenant.api.get(f"/v2/mail-addresses/{address_id}").json()
    assert got["address"] == address  # as the customer wrote it
    assert got["projectId"] == tenant.project_id
    assert got["forwardAddresses"] == []
    assert got["autoResponder"] == {"active": False}
    assert got["mailbox"]["storageInBytes"]["limit"] == 2 * 1024**3
    assert got["mailbox"]["storageInBytes"]["current"]["value"] == 0
    assert got["mailbox"]["spamProtection"]["active"] is True
    assert got["mailbox"]["name"].isascii()
    assert "password" not in str(got).lower().replace("passwordupdatedat", "")


def test_internationalised_address(tenant: Tenant) -> None:
    address = f"пошта@{tenant.idn_domain}"
    address_id = create(tenant, mailbox_body(address))
    assert tenant.api.get(f"/v2/mail-addresses/{address_id}").json()["address"] == address


def test_forward_address_and_defaults(tenant: Tenant) -> None:
    # mittwald's CLI omits isCatchAll; spam protection defaults to on.
    address_id = create(
        tenant, {"address": f"fwd@{tenant.domain}", "forwardAddresses": ["a@elsewhere.example"]}
    )
    got = tenant.api.get(f"/v2/mail-addresses/{address_id}").json()
    assert got["forwardAddresses"] == ["a@elsewhere.example"]
    assert got["isCatchAll"] is False
    assert "mailbox" not in got
    body = mailbox_body(f"spam@{tenant.domain}")
    del body["mailbox"]["enableSpamProtection"]  # type: ignore[attr-defined]
    mailbox = tenant.api.get(f"/v2/mail-addresses/{create(tenant, body)}").json()
    assert mailbox["mailbox"]["spamProtection"]["active"] is True


def test_mailbox_with_forward_copies(tenant: Tenant) -> None:
    address_id = create(
        tenant, mailbox_body(f"copy@{tenant.domain}", forwardAddresses=["x@elsewhere.example"])
    )
    got = tenant.api.get(f"/v2/mail-addresses/{address_id}").json()
    assert got["forwardAddresses"] == ["x@elsewhere.example"]
    assert "mailbox" in got


def test_uniqueness_is_installation_wide_by_lookup_key(tenant: Tenant) -> None:
    create(tenant, mailbox_body(f"Straße@{tenant.domain}"))
    duplicate = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        json=mailbox_body(f"STRASSE@{tenant.domain.upper()}"),
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["type"] == "Conflict"
    a_label = tenant.idn_domain.encode("idna").decode()
    create(tenant, mailbox_body(f"x@{tenant.idn_domain}"))
    assert (
        tenant.api.post(
            f"/v2/projects/{tenant.project_id}/mail-addresses", json=mailbox_body(f"X@{a_label}")
        ).status_code
        == 409
    )


def test_domain_must_be_assigned_to_the_project(tenant: Tenant, other_tenant: Tenant) -> None:
    for domain in ("gmail.com", other_tenant.domain):
        response = tenant.api.post(
            f"/v2/projects/{tenant.project_id}/mail-addresses", json=mailbox_body(f"me@{domain}")
        )
        assert response.status_code == 400
        issue = response.json()["validationErrors"][0]
        assert issue["path"] == ".address"
        assert domain in issue["message"]


def test_one_catch_all_per_domain(tenant: Tenant) -> None:
    first = create(tenant, {**mailbox_body(f"all@{tenant.domain}"), "isCatchAll": True})
    second = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        json={**mailbox_body(f"all2@{tenant.domain}"), "isCatchAll": True},
    )
    assert second.status_code == 409
    other = create(tenant, mailbox_body(f"other@{tenant.domain}"))
    assert tenant.api.patch(f"/v2/mail-addresses/{other}/catch-all", json={"active": True}).status_code == 409
    assert (
        tenant.api.patch(f"/v2/mail-addresses/{first}/catch-all", json={"active": False}).status_code == 204
    )
    assert tenant.api.patch(f"/v2/mail-addresses/{other}/catch-all", json={"active": True}).status_code == 204
    assert tenant.api.get(f"/v2/mail-addresses/{other}").json()["isCatchAll"] is True


def test_every_update(tenant: Tenant) -> None:
    address_id = create(tenant, mailbox_body(f"upd@{tenant.domain}"))
    base = f"/v2/mail-addresses/{address_id}"
    before = tenant.api.get(base).json()
    assert (
        tenant.api.patch(f"{base}/address", json={"address": f"renamed@{tenant.domain}"}).status_code == 204
    )
    assert (
        tenant.api.patch(
            f"{base}/autoresponder",
            json={
                "autoResponder": {
                    "active": True,
                    "message": "Away until Monday",
                    "startsAt": "2026-12-01T00:00:00Z",
                    "expiresAt": "2026-12-24T00:00:00Z",
                }
            },
        ).status_code
        == 204
    )
    assert (
        tenant.api.patch(
            f"{base}/forward-addresses",
            json={"forwardAddresses": ["a@elsewhere.example", "b@elsewhere.example"]},
        ).status_code
        == 204
    )
    assert tenant.api.patch(f"{base}/password", json={"password": "another good secret"}).status_code == 204
    assert tenant.api.patch(f"{base}/quota", json={"quotaInBytes": -1}).status_code == 204
    assert (
        tenant.api.patch(
            f"{base}/spam-protection",
            json={
                "spamProtection": {
                    "active": True,
                    "folder": "inbox",
                    "relocationMinSpamScore": 7,
                    "autoDeleteSpam": True,
                }
            },
        ).status_code
        == 204
    )
    after = tenant.api.get(base).json()
    assert after["address"] == f"renamed@{tenant.domain}"
    assert after["autoResponder"]["active"] is True
    assert after["autoResponder"]["message"] == "Away until Monday"
    assert after["forwardAddresses"] == ["a@elsewhere.example", "b@elsewhere.example"]
    assert after["mailbox"]["storageInBytes"]["limit"] == -1
    assert after["mailbox"]["spamProtection"] == {
        "active": True,
        "folder": "inbox",
        "relocationMinSpamScore": 7,
        "autoDeleteSpam": True,
    }
    assert after["mailbox"]["passwordUpdatedAt"] > before["mailbox"]["passwordUpdatedAt"]
    assert after["updatedAt"] > before["updatedAt"]
    assert tenant.api.patch(f"{base}/autoresponder", json={"autoResponder": None}).status_code == 204
    assert tenant.api.get(base).json()["autoResponder"] == {"active": False}


def test_update_validation(tenant: Tenant) -> None:
    address_id = create(tenant, mailbox_body(f"val@{tenant.domain}"))
    base = f"/v2/mail-addresses/{address_id}"
    cases = [
        ("quota", {"quotaInBytes": 1000}, ".quotaInBytes", "minimum"),
        ("quota", {"quotaInBytes": "1000"}, ".quotaInBytes", "type"),
        ("quota", {}, "", "required"),
        ("password", {"password": "short"}, ".password", "minLength"),
        ("password", {"password": "val"}, ".password", "minLength"),
        ("forward-addresses", {"forwardAddresses": [f"val@{tenant.domain}"]}, ".forwardAddresses[0]", "not"),
        (
            "forward-addresses",
            {"forwardAddresses": ["x@y.example", "X@Y.example"]},
            ".forwardAddresses[1]",
            "uniqueItems",
        ),
        ("forward-addresses", {"forwardAddresses": ["not-an-address"]}, ".forwardAddresses[0]", "format"),
        (
            "spam-protection",
            {
                "spamProtection": {
                    "active": True,
                    "folder": "trash",
                    "relocationMinSpamScore": 5,
                    "autoDeleteSpam": False,
                }
            },
            ".spamProtection.folder",
            "enum",
        ),
        (
            "autoresponder",
            {
                "autoResponder": {
                    "active": True,
                    "message": "x",
                    "startsAt": "2026-12-02T00:00:00Z",
                    "expiresAt": "2026-12-01T00:00:00Z",
                }
            },
            ".autoResponder.expiresAt",
            "formatMinimum",
        ),
        ("address", {"address": "no-at-sign"}, ".address", "format"),
    ]
    for suffix, body, path, keyword in cases:
        response = tenant.api.patch(f"{base}/{suffix}", json=body)
        assert response.status_code == 400, (suffix, body, response.text)
        issues = response.json()["validationErrors"]
        assert any(i["path"] == path and i["type"] == keyword for i in issues), (suffix, body, issues)
    assert tenant.api.patch(f"{base}/password", json={"password": f"val@{tenant.domain}"}).status_code == 400


def test_password_must_not_be_the_address(tenant: Tenant) -> None:
    address = f"longlocalpart@{tenant.domain}"
    for password in (address, "longlocalpart", "LONGLOCALPART"):
        response = tenant.api.post(
            f"/v2/projects/{tenant.project_id}/mail-addresses", json=mailbox_body(address, password=password)
        )
        assert response.status_code == 400
        assert response.json()["validationErrors"][0]["path"] == ".mailbox.password"


def test_forwarding_address_has_no_mailbox_settings(tenant: Tenant) -> None:
    address_id = create(
        tenant, {"address": f"f@{tenant.domain}", "forwardAddresses": ["a@elsewhere.example"]}
    )
    base = f"/v2/mail-addresses/{address_id}"
    assert tenant.api.patch(f"{base}/quota", json={"quotaInBytes": -1}).status_code == 400
    assert tenant.api.patch(f"{base}/password", json={"password": "a good password"}).status_code == 400
    assert tenant.api.patch(f"{base}/forward-addresses", json={"forwardAddresses": []}).status_code == 400


def test_delete_and_not_found(tenant: Tenant) -> None:
    address_id = create(tenant, mailbox_body(f"gone@{tenant.domain}"))
    assert tenant.api.delete(f"/v2/mail-addresses/{address_id}").status_code == 204
    missing = tenant.api.get(f"/v2/mail-addresses/{address_id}")
    assert missing.status_code == 404
    assert missing.json()["type"] == "NotFound"
    assert tenant.api.delete(f"/v2/mail-addresses/{address_id}").status_code == 404
    assert tenant.api.get(f"/v2/mail-addresses/{uuid.uuid4()}").status_code == 404
    # The address is free again at once.
    create(tenant, mailbox_body(f"gone@{tenant.domain}"))


def test_other_projects_addresses_are_invisible(tenant: Tenant, other_tenant: Tenant) -> None:
    address_id = create(tenant, mailbox_body(f"mine@{tenant.domain}"))
    assert other_tenant.api.get(f"/v2/mail-addresses/{address_id}").status_code == 404
    assert other_tenant.api.delete(f"/v2/mail-addresses/{address_id}").status_code == 404
    assert (
        other_tenant.api.patch(
            f"/v2/mail-addresses/{address_id}/quota", json={"quotaInBytes": -1}
        ).status_code
        == 404
    )
    assert other_tenant.api.get(f"/v2/projects/{tenant.project_id}/mail-addresses").status_code == 403


def test_rate_limit_change_request(tenant: Tenant) -> None:
    tiers = tenant.api.get("/v2/mail-rate-limits").json()
    assert len(tiers) >= 2
    address_id = create(tenant, mailbox_body(f"rl@{tenant.domain}"))
    current = tenant.api.get(f"/v2/mail-addresses/{address_id}").json()["mailbox"]["mailsystemSettings"][
        "rateLimitId"
    ]
    assert current in {tier["id"] for tier in tiers}
    wanted = next(tier["id"] for tier in tiers if tier["id"] != current)
    url = f"/v2/mail-addresses/{address_id}/actions/request-rate-limit-change"
    assert tenant.api.post(url, json={"rateLimitId": wanted}).status_code == 204
    got = tenant.api.get(f"/v2/mail-addresses/{address_id}").json()
    assert got["rateLimitChangeRequest"] == {"rateLimitId": wanted}
    assert tenant.api.post(url, json={"rateLimitId": str(uuid.uuid4())}).status_code == 400
    assert tenant.api.get(f"/v2/mail-rate-limits/{wanted}").json()["id"] == wanted
    assert tenant.api.get(f"/v2/mail-rate-limits/{uuid.uuid4()}").status_code == 404


def test_autoresponder_times_need_a_zone_and_a_sane_range(tenant: Tenant) -> None:
    address_id = create(tenant, mailbox_body(f"ar@{tenant.domain}"))
    url = f"/v2/mail-addresses/{address_id}/autoresponder"
    for starts, expires in (
        ("2030-01-01T00:00:00Z", "2031-01-01T00:00:00"),
        ("2030-01-01T00:00:00", None),
        ("0001-01-01T00:00:00+05:00", None),
        (None, "9999-12-31T23:59:59-05:00"),
    ):
        body = {"active": True, "message": "away", "startsAt": starts, "expiresAt": expires}
        body = {key: value for key, value in body.items() if value is not None}
        response = tenant.api.patch(url, json={"autoResponder": body})
        assert response.status_code == 400, (starts, expires, response.text)
    anonymous = tenant.api.client.patch(
        url,
        headers={"x-access-token": ""},
        json={"autoResponder": {"active": True, "message": "x", "startsAt": "2030-01-01T00:00:00"}},
    )
    assert anonymous.status_code == 401
