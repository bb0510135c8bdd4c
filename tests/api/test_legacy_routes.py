"""The paths of mittwald's public guides and the deprecated PUT twins, answered directly (no redirect)."""

from __future__ import annotations

from tests.api.conftest import Tenant, mailbox_body


def test_guide_paths_for_mail_addresses(tenant: Tenant) -> None:
    project = tenant.project_id
    created = tenant.api.post(
        f"/v2/projects/{project}/mailaddresses", json=mailbox_body(f"guide@{tenant.domain}")
    )
    assert created.status_code == 201
    address_id = created.json()["id"]
    listed = tenant.api.get(f"/v2/projects/{project}/mailaddresses")
    assert listed.status_code == 200 and listed.headers["x-pagination-totalcount"] == "1"
    assert tenant.api.get(f"/v2/mailaddresses/{address_id}").json()["id"] == address_id
    base = f"/v2/mailaddresses/{address_id}"
    puts = [
        ("address", {"address": f"guide2@{tenant.domain}"}),
        ("autoResponder", {"autoResponder": {"active": True, "message": "gone fishing"}}),
        ("catchAll", {"active": True}),
        ("forwardaddresses", {"forwardAddresses": ["a@elsewhere.example"]}),
        ("password", {"password": "a brand new secret"}),
        ("quota", {"quotaInBytes": 209715200}),
        (
            "spamprotection",
            {
                "spamProtection": {
                    "active": False,
                    "folder": "spam",
                    "relocationMinSpamScore": 3,
                    "autoDeleteSpam": False,
                }
            },
        ),
    ]
    for suffix, body in puts:
        response = tenant.api.put(f"{base}/{suffix}", json=body)
        assert response.status_code == 200, (suffix, response.text)
    got = tenant.api.get(f"/v2/mail-addresses/{address_id}").json()
    assert got["address"] == f"guide2@{tenant.domain}" and got["isCatchAll"] is True
    assert got["mailbox"]["spamProtection"]["active"] is False
    assert tenant.api.put(f"{base}/quota", json={"quotaInBytes": 5}).status_code == 400
    assert tenant.api.delete(base).status_code == 204
    assert tenant.api.get(base).status_code == 404


def test_deprecated_puts_on_current_paths(tenant: Tenant) -> None:
    created = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses", json=mailbox_body(f"dep@{tenant.domain}")
    )
    base = f"/v2/mail-addresses/{created.json()['id']}"
    for suffix, body in (
        ("autoresponder", {"autoResponder": None}),
        ("catchall", {"active": False}),
        ("forward-addresses", {"forwardAddresses": []}),
        ("password", {"password": "yet another secret"}),
        ("quota", {"quotaInBytes": -1}),
        (
            "spam-protection",
            {
                "spamProtection": {
                    "active": True,
                    "folder": "inbox",
                    "relocationMinSpamScore": 9,
                    "autoDeleteSpam": True,
                }
            },
        ),
    ):
        assert tenant.api.put(f"{base}/{suffix}", json=body).status_code == 200, suffix


def test_guide_paths_for_delivery_boxes(tenant: Tenant) -> None:
    project = tenant.project_id
    created = tenant.api.post(
        f"/v2/projects/{project}/deliveryboxes", json={"description": "script", "password": "a strong secret"}
    )
    assert created.status_code == 201
    box_id = created.json()["id"]
    assert tenant.api.get(f"/v2/projects/{project}/deliveryboxes").json()[0]["id"] == box_id
    assert tenant.api.get(f"/v2/deliveryboxes/{box_id}").status_code == 200
    assert (
        tenant.api.put(f"/v2/deliveryboxes/{box_id}/description", json={"description": "cron"}).status_code
        == 200
    )
    assert (
        tenant.api.put(f"/v2/deliveryboxes/{box_id}/password", json={"password": "another one!"}).status_code
        == 200
    )
    assert tenant.api.get(f"/v2/delivery-boxes/{box_id}").json()["description"] == "cron"
    assert tenant.api.delete(f"/v2/deliveryboxes/{box_id}").status_code == 204


def test_not_yet_implemented_routes_are_404(tenant: Tenant) -> None:
    created = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses", json=mailbox_body(f"bk@{tenant.domain}")
    )
    address_id = created.json()["id"]
    for method, path in (
        ("GET", f"/v2/mail-addresses/{address_id}/backups"),
        ("POST", f"/v2/mail-addresses/{address_id}/backups/20260101/recovery"),
        ("DELETE", f"/v2/mail-addresses/{address_id}/mail-archive"),
    ):
        response = tenant.api.client.request(method, path)
        assert response.status_code == 404
        assert set(response.json()) == {"type", "message"}
