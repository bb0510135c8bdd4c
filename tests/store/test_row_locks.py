"""Concurrent writes to one address run one after the other (PostgreSQL row lock; SQLite has one writer)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from postwerk.service import mail_addresses
from postwerk.service.access import ADMIN
from postwerk.store import repository as repo
from tests.store.conftest import HostedProject


def test_a_write_waits_for_the_address_lock(engine: Engine, hosted: HostedProject) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: nothing to lock")
    context, project_id, domain = hosted.context, hosted.project_id, hosted.domain
    address_id = mail_addresses.create(
        context,
        ADMIN,
        project_id,
        mail_addresses.NewAddress(address=f"a@{domain}", forward_addresses=["x@elsewhere.example"]),
    )
    writer = threading.Thread(
        target=mail_addresses.set_forward_targets, args=(context, ADMIN, address_id, ["y@elsewhere.example"])
    )
    with context.db.write() as connection:
        repo.get_address(connection, address_id, for_update=True)
        writer.start()
        writer.join(timeout=0.5)
        assert writer.is_alive(), "the second writer did not wait for the row lock"
    writer.join(timeout=10)
    assert not writer.is_alive()
    with context.db.read() as connection:
        assert repo.get_address(connection, address_id).targets == ["y@elsewhere.example"]
