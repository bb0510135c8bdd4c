"""The mail services' store functions on both databases: the policy's lookup (what it finds, and that each
half is an index probe) and the usage write (the API's stored document shows it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, select, text

from postwerk.domain.delivery_quota import Found, full_mailboxes
from postwerk.service import mail_addresses
from postwerk.service.access import ADMIN
from postwerk.store import repository, tables
from postwerk.store.address_document import MAIL_ADDRESS_DOCUMENT
from postwerk.store.mail_lookups import _destinations_statement, find_destinations
from tests.store.conftest import HostedProject

PASSWORD = "a long secret"


def _create(hosted: HostedProject, address: str, **values: object) -> str:
    return mail_addresses.create(
        hosted.context, ADMIN, hosted.project_id, mail_addresses.NewAddress(address=address, **values)
    )


def _mailbox(quota: int = -1) -> mail_addresses.NewMailbox:
    return mail_addresses.NewMailbox(password=PASSWORD, quota_in_bytes=quota)


def test_destinations_with_forwards_catch_all_and_usage(engine: Engine, hosted: HostedProject) -> None:
    domain = hosted.domain
    box = _create(hosted, f"Box@{domain}", mailbox=_mailbox(), forward_addresses=["copy@elsewhere.example"])
    _create(hosted, f"fwd@{domain}", forward_addresses=[f"box@{domain}", "x@пример.рф"])
    catch_all = _create(hosted, f"all@{domain}", is_catch_all=True, mailbox=_mailbox())
    with hosted.context.db.write() as connection:
        repository.update_address(connection, box, {"quota_bytes": 100, "usage_bytes": 150})

    with hosted.context.db.read() as connection:
        found = find_destinations(connection, [f"box@{domain}", f"fwd@{domain}", "no@x.example"], [domain])
        assert set(found.addresses) == {f"box@{domain}", f"fwd@{domain}"}
        mailbox = found.addresses[f"box@{domain}"].mailbox
        assert mailbox is not None and (mailbox.mailbox_id, mailbox.quota_bytes, mailbox.usage_bytes) == (
            box,
            100,
            150,
        )
        assert found.addresses[f"box@{domain}"].forwards == ("copy@elsewhere.example",)
        forward = found.addresses[f"fwd@{domain}"]
        assert forward.mailbox is None
        assert sorted(forward.forwards) == [f"box@{domain}", "x@xn--e1afmkfd.xn--p1ai"]
        all_mailbox = found.catch_alls[domain].mailbox
        assert all_mailbox is not None and all_mailbox.mailbox_id == catch_all

        def lookup(keys: Sequence[str], domains: Sequence[str]) -> Found:
            return find_destinations(connection, keys, domains)

        assert [m.mailbox_id for m in full_mailboxes(f"FWD@{domain}", lookup)] == [box]
        assert full_mailboxes(f"someone@{domain}", lookup) == []


def test_recorded_usage_is_in_the_api_document(engine: Engine, hosted: HostedProject) -> None:
    box = _create(hosted, f"usage@{hosted.domain}", mailbox=_mailbox())
    measured = datetime(2026, 11, 26, 12, 0, 1, 500000, tzinfo=UTC)
    with hosted.context.db.write() as connection:
        repository.update_usage(connection, {box: (12345, 0), "no-such-mailbox": (1, 0)}, measured)
    document = json.loads(mail_addresses.get(hosted.context, ADMIN, box))
    current = document["mailbox"]["storageInBytes"]["current"]
    assert current["value"] == 12345
    assert current["updatedAt"].startswith("2026-11-26T12:00:01.5")

    with hosted.context.db.write() as connection:
        repository.update_usage(connection, {box: (None, 655)}, measured)  # an increment: added
    document = json.loads(mail_addresses.get(hosted.context, ADMIN, box))
    assert document["mailbox"]["storageInBytes"]["current"]["value"] == 13000
    with hosted.context.db.write() as connection:
        repository.update_usage(
            connection, {box: (100, -50_000)}, measured
        )  # a total, then more removed: never below 0
    document = json.loads(mail_addresses.get(hosted.context, ADMIN, box))
    assert document["mailbox"]["storageInBytes"]["current"]["value"] == 0
    with hosted.context.db.write() as connection:
        repository.update_usage(connection, {box: (None, 4096)}, datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    _assert_stored_document_is_current(engine, box)


def test_a_batch_of_usage_changes_reaches_each_mailbox_in_one_statement(
    engine: Engine, hosted: HostedProject
) -> None:
    # Ids in another order than their sorted one, totals and increments mixed: each mailbox gets its own
    # change (on PostgreSQL the batch goes as arrays sorted by id, which must stay aligned).
    boxes = [_create(hosted, f"batch{n}@{hosted.domain}", mailbox=_mailbox()) for n in range(4)]
    changes = {
        boxes[3]: (1000, 0),
        boxes[0]: (None, 250),
        boxes[2]: (None, 0),
        boxes[1]: (5000, -1000),
        "no-such-mailbox": (None, 7),
    }
    measured = datetime(2026, 11, 27, 4, 0, 0, tzinfo=UTC)
    with hosted.context.db.write_statement() as connection:
        repository.update_usage(connection, changes, measured)
    values = [
        json.loads(mail_addresses.get(hosted.context, ADMIN, box))["mailbox"]["storageInBytes"]["current"]
        for box in boxes
    ]
    assert [value["value"] for value in values] == [250, 4000, 0, 1000]
    assert all(value["updatedAt"].startswith("2026-11-27T04:00:00") for value in values)
    for box in boxes:
        _assert_stored_document_is_current(engine, box)


def test_the_usage_write_rewrites_only_the_usage_in_a_stored_document_of_the_current_shape(
    engine: Engine, hosted: HostedProject
) -> None:
    """The usage object is rewritten in the stored text where that text is of the current shape (another
    member changed behind the store's back stays as stored: nothing else was built again); documents
    missing or of another shape are built whole, in the same batch; text from a customer that looks like
    the usage object is not taken for it."""
    patched, missing, older, forged = (
        _create(hosted, f"{name}@{hosted.domain}", mailbox=_mailbox())
        for name in ("patched", "missing", "older", "forged")
    )
    table = tables.mail_addresses
    # Characters of several bytes before the usage object: positions are counted in characters.
    lure = 'Grüße 😀 x"current" : {"value" : 1} "current":{"value":1}} \\"current\\":{'
    with hosted.context.db.write() as connection:
        repository.update_address(connection, forged, {"autoresponder_message": lure})
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE mail_addresses SET document = replace(document, 'patched@', 'kept@') WHERE id = :id"
            ),
            {"id": patched},
        )
        connection.execute(
            table.update().where(table.c.id == missing).values(document=None, document_version=None)
        )
        connection.execute(table.update().where(table.c.id == older).values(document_version="older-shape"))
    changes: dict[str, tuple[int | None, int]] = {
        patched: (None, 1000),
        missing: (2000, 0),
        older: (None, 3000),
        forged: (None, 4000),
        "no-such-mailbox": (None, 5),
    }
    with hosted.context.db.write_statement() as connection:
        repository.update_usage(connection, changes, datetime(2026, 11, 27, 9, 0, 0, 123456, tzinfo=UTC))

    with engine.connect() as connection:
        stored = dict(connection.execute(select(table.c.id, table.c.document)).all())
    kept = json.loads(stored[patched])
    assert kept["address"] == f"kept@{hosted.domain}"  # the rest of the stored text, untouched
    assert kept["mailbox"]["storageInBytes"]["current"] == {
        "value": 1000,
        "updatedAt": "2026-11-27T09:00:00.123456Z",
    }
    for box in (missing, older, forged):
        _assert_stored_document_is_current(engine, box)
    forged_document = json.loads(stored[forged])
    assert forged_document["autoResponder"]["message"] == lure
    assert forged_document["mailbox"]["storageInBytes"]["current"]["value"] == 4000


def _assert_stored_document_is_current(engine: Engine, address_id: str) -> None:
    """The document the usage write stored with the new values is, byte for byte, the one built from the
    row as it is now."""
    computed = MAIL_ADDRESS_DOCUMENT.expression(engine.dialect)
    table = tables.mail_addresses
    with engine.connect() as connection:
        row = connection.execute(
            select(table.c.document, table.c.document_version, computed).where(table.c.id == address_id)
        ).one()
    assert row.document_version == MAIL_ADDRESS_DOCUMENT.version(engine.dialect)
    stored, _, current = row
    assert stored == current


def test_the_lookup_is_index_probes_only(engine: Engine) -> None:
    keys = {"key0": "a@b.example", "key1": "c@b.example", "domain0": "b.example"}
    statement = _destinations_statement(2, 1).params(**keys)
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True, "render_postcompile": True})
    query = str(compiled)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {query}")))
            assert "SCAN" not in plan and "uq_mail_addresses_catch_all" in plan, plan
        else:
            connection.execute(text("SET enable_seqscan = off"))  # tiny test tables: ask what the plan can be
            plan = " ".join(row[0] for row in connection.execute(text(f"EXPLAIN {query}")))
            assert "Seq Scan" not in plan and "uq_mail_addresses_catch_all" in plan, plan
