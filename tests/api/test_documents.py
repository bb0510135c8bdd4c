"""Postwerk's own OpenAPI document and the interactive docs page (served without any CDN)."""

from __future__ import annotations

import httpx

from tests.api.conftest import LiveServer
from tests.api.spec import SpecValidator


def test_openapi_document_uses_the_official_operation_ids(
    live_server: LiveServer, validator: SpecValidator
) -> None:
    document = httpx.get(f"{live_server.base_url}/v2/openapi.json", timeout=10).json()
    own = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert validator.official_operation_ids() - own == {
        "mail-list-backups-for-mail-address",
        "mail-recover-mail-address-emails",
        "mail-disable-mail-archive",
    }
    assert all(op.startswith(("mail-", "deprecated-mail-", "legacy-", "project-", "postwerk-")) for op in own)
    # Postwerk's own operations are marked as such, and only they.
    extensions = {
        op["operationId"]
        for item in document["paths"].values()
        for op in item.values()
        if op.get("x-postwerk-extension") is True
    }
    assert extensions == {op for op in own if op.startswith("postwerk-")} == {"postwerk-list-mail-domains"}
    operation = document["paths"]["/v2/projects/{projectId}/mail-domains"]["get"]
    assert operation["tags"] == ["Postwerk extensions"]
    schemes = document["components"]["securitySchemes"]
    assert {scheme.get("name", scheme.get("scheme")) for scheme in schemes.values()} == {
        "x-access-token",
        "bearer",
    }


def test_docs_page_is_served_offline(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.base_url}/v2/docs", timeout=10)
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert "cdn." not in page.text and "/v2/openapi.json" in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/v2/docs/static/{asset}" in page.text
        assert httpx.get(f"{live_server.base_url}/v2/docs/static/{asset}", timeout=10).status_code == 200
