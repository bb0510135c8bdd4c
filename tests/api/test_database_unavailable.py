"""A database that cannot be reached is a passing condition: 503 with a mittwald error body, never a 500."""

from __future__ import annotations

import httpx

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context
from postwerk.store.db import create_db_engine
from postwerk.store.repository import Database
from tests.api.conftest import free_port, serving


def test_unreachable_database_answers_503() -> None:
    nowhere = create_db_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/test", pool_size=1)
    context = Context(Database(nowhere), RateLimitCatalogue.from_values([500], 500))
    with serving(context) as base_url:
        for path in ("/v2/projects", "/v2/mail-rate-limits", "/v2/mail-addresses/"):
            response = httpx.get(f"{base_url}{path}", headers={"x-access-token": "pw_anything"}, timeout=30)
            assert response.status_code == 503, (path, response.text)
            assert response.json()["type"] == "ServiceUnavailable"
    nowhere.dispose()
