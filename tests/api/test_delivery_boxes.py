"""Delivery boxes: send-only accounts, through current and legacy routes."""

from __future__ import annotations

import uuid

from tests.api.conftest import Tenant


def create_box(tenant: Tenant, description: str = "newsletter app") -> str:
    response = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/delivery-boxes",
        json={"description": description, "password": "a strong secret"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_delivery_box_life_cycle(tenant: Tenant) -> None:
    box_id = create_box(tenant)
    box = tenant.api.get(f"/v2/delivery-boxes/{box_id}").json()
    assert box["description"] == "newsletter app"
    assert box["name"].isascii() and "@" not in box["name"]
    assert box["authenticationEnabled"] is True and box["sendingEnabled"] is True
    assert "password" not in box
    assert (
        tenant.api.patch(f"/v2/delivery-boxes/{box_id}/description", json={"description": "shop"}).status_code
        == 204
    )
    assert (
        tenant.api.patch(
            f"/v2/delivery-boxes/{box_id}/password", json={"password": "another strong secret"}
        ).status_code
        == 204
    )
    after = tenant.api.get(f"/v2/delivery-boxes/{box_id}").json()
    assert after["description"] == "shop"
    assert after["passwordUpdatedAt"] > box["passwordUpdatedAt"]
    assert after["name"] == box["name"]  # the login is stable
    listed = tenant.api.get(f"/v2/projects/{tenant.project_id}/delivery-boxes", params={"search": "sho"})
    assert [item["id"] for item in listed.json()] == [box_id]
    assert listed.headers["x-pagination-totalcount"] == "1"
    assert tenant.api.delete(f"/v2/delivery-boxes/{box_id}").status_code == 204
    assert tenant.api.get(f"/v2/delivery-boxes/{box_id}").status_code == 404


def test_delivery_box_validation_and_isolation(tenant: Tenant, other_tenant: Tenant) -> None:
    url = f"/v2/projects/{tenant.project_id}/delivery-boxes"
    short = tenant.api.post(url, json={"description": "x", "password": "short"})
    assert short.status_code == 400 and short.json()["validationErrors"][0]["path"] == ".password"
    missing = tenant.api.post(url, json={"description": "x"})
    assert missing.json()["validationErrors"][0]["context"] == {"missingProperty": "password"}
    box_id = create_box(tenant)
    assert other_tenant.api.get(f"/v2/delivery-boxes/{box_id}").status_code == 404
    assert (
        other_tenant.api.patch(
            f"/v2/delivery-boxes/{box_id}/description", json={"description": "mine now"}
        ).status_code
        == 404
    )
    assert (
        other_tenant.api.post(url, json={"description": "x", "password": "a strong secret"}).status_code
        == 403
    )
    assert tenant.api.get(f"/v2/delivery-boxes/{uuid.uuid4()}").status_code == 404
    assert tenant.api.get("/v2/delivery-boxes/not-a-uuid").status_code == 400
