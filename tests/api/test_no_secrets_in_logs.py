"""The suite-wide check that no password reaches a log line has something to check."""

from __future__ import annotations

import logging

from tests.api.conftest import Tenant, mailbox_body
from tests.conftest import PASSWORDS_SENT


def test_passwords_are_seen_and_logging_is_at_debug(tenant: Tenant) -> None:
    password = "a-distinctive-secret-4711"
    response = tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        json=mailbox_body(f"log@{tenant.domain}", password=password),
    )
    assert response.status_code == 201
    assert password in PASSWORDS_SENT
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    # A failing request with the password in it must not log it either.
    tenant.api.post(
        f"/v2/projects/{tenant.project_id}/mail-addresses",
        json=mailbox_body(f"log@{tenant.domain}", password=password),
    )
