"""The mail address document the database writes (`store.address_document`) equals, value for
value and timestamp string for timestamp string (six fractional digits, `Z`), the same object built in
Python from the row, for rows
that exercise every optional field, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select, update

from postwerk.service import mail_addresses
from postwerk.service.access import ADMIN
from postwerk.store import repository as repo
from postwerk.store.address_document import MAIL_ADDRESS_DOCUMENT
from postwerk.store.tables import forward_targets
from postwerk.store.tables import mail_addresses as addresses_table
from tests.store.conftest import HostedProject


def expected_document(row: Any, targets: list[str]) -> Any:
    """The wire object, built independently of the SQL, serialised the way the rest of the API is."""
    responder: dict[str, Any] = {"active": row.autoresponder_active}
    for key, value in (
        ("message", row.autoresponder_message),
        ("startsAt", row.autoresponder_starts_at),
        ("expiresAt", row.autoresponder_expires_at),
    ):
        if value is not None:
            responder[key] = value
    body: dict[str, Any] = {
        "id": row.id,
        "address": row.address,
        "projectId": row.project_id,
        "receivingDisabled": row.receiving_disabled,
        "isCatchAll": row.is_catch_all,
        "forwardAddresses": targets,
        "updatedAt": row.updated_at,
        "autoResponder": responder,
        "isArchived": False,
        "isBackupInProgress": False,
        "archive": {"active": False, "quota": 0, "usedBytes": 0},
    }
    if row.is_mailbox:
        body["mailbox"] = {
            "name": row.mailbox_name,
            "sendingEnabled": row.sending_enabled,
            "passwordUpdatedAt": row.password_updated_at,
            "spamProtection": {
                "active": row.spam_active,
                "folder": row.spam_folder,
                "relocationMinSpamScore": row.spam_min_score,
                "autoDeleteSpam": row.spam_auto_delete,
            },
            "storageInBytes": {
                "limit": row.quota_bytes,
                "current": {"value": row.usage_bytes, "updatedAt": row.usage_updated_at},
            },
            "mailsystemSettings": {"rateLimitId": row.rate_limit_id},
        }
    if row.rate_limit_request_id is not None:
        body["rateLimitChangeRequest"] = {"rateLimitId": row.rate_limit_request_id}
    return orjson.loads(orjson.dumps(body, default=_timestamp, option=orjson.OPT_PASSTHROUGH_DATETIME))


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _create(hosted: HostedProject, local: str, **kwargs: Any) -> str:
    request = mail_addresses.NewAddress(address=f"{local}@{hosted.domain}", **kwargs)
    return mail_addresses.create(hosted.context, ADMIN, hosted.project_id, request)


@pytest.fixture
def varied_addresses(engine: Engine, hosted: HostedProject) -> list[str]:
    box = mail_addresses.NewMailbox(password="a long secret", quota_in_bytes=-1)
    ids = [
        _create(hosted, "plain", mailbox=box),
        _create(
            hosted, "копия", mailbox=box, forward_addresses=["b@x.example", "a@пример.рф", "c@x.example"]
        ),
        _create(hosted, "fwd", forward_addresses=[f"plain@{hosted.domain}"]),
        _create(hosted, "all", forward_addresses=["x@x.example"], is_catch_all=True),
        _create(hosted, "responder", mailbox=box),
    ]
    whole_second = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with hosted.context.db.write() as connection:
        repo.update_address(
            connection,
            ids[4],
            {
                "autoresponder_active": True,
                "autoresponder_message": 'Away "till" Monday\n\\ back — ünïcode \x7f',
                "autoresponder_starts_at": whole_second,
                "autoresponder_expires_at": datetime(2030, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
                "rate_limit_request_id": "0a3c8d4e-0000-4000-8000-000000000001",
                "receiving_disabled": True,
                "updated_at": whole_second,
                "quota_bytes": 5 * 2**40,
                "usage_bytes": 123_456_789_012,
            },
        )
        repo.update_address(
            connection,
            ids[1],
            {"autoresponder_message": "only a message", "spam_active": False, "sending_enabled": False},
        )
    return ids


def _expected(engine: Engine, address_id: str) -> Any:
    with engine.connect() as connection:
        row = connection.execute(select(addresses_table).where(addresses_table.c.id == address_id)).one()
        targets = connection.execute(
            select(forward_targets.c.target)
            .where(forward_targets.c.address_id == address_id)
            .order_by(forward_targets.c.position)
        ).scalars()
        return expected_document(row, list(targets))


def test_get_document_equals_the_python_built_object(
    engine: Engine, hosted: HostedProject, varied_addresses: list[str]
) -> None:
    for address_id in varied_addresses:
        with hosted.context.db.read() as connection:
            found = repo.get_address_document(connection, address_id)
        assert found.address_project_id == hosted.project_id
        assert orjson.loads(found.document) == _expected(engine, address_id)


def test_list_documents_equal_the_python_built_objects_in_order(
    engine: Engine, hosted: HostedProject, varied_addresses: list[str]
) -> None:
    with hosted.context.db.read() as connection:
        documents, total = repo.list_address_documents(
            connection,
            repo.AddressFilter(project_ids=[hosted.project_id]),
            [repo.Sorting("local_part", descending=True)],
            repo.Page(limit=100, skip=0),
        )
    assert total == len(varied_addresses)
    listed = [orjson.loads(document) for document in documents]
    assert [item["address"].split("@")[0] for item in listed] == [
        "копия",
        "responder",
        "plain",
        "fwd",
        "all",
    ]
    assert listed == [_expected(engine, item["id"]) for item in listed]


@pytest.mark.parametrize("stored", [None, "0000000000000000"], ids=["never-stored", "older-shape"])
def test_a_row_without_a_current_stored_document_is_computed(
    engine: Engine, hosted: HostedProject, varied_addresses: list[str], stored: str | None
) -> None:
    # Rows loaded in bulk have no stored document; rows written by a release with another shape have one
    # with another version: both are computed on read, never served as stored.
    with engine.begin() as connection:
        connection.execute(
            update(addresses_table).values(
                document='{"stale": true}' if stored else None, document_version=stored
            )
        )
    for address_id in varied_addresses:
        with hosted.context.db.read() as connection:
            found = repo.get_address_document(connection, address_id)
        assert orjson.loads(found.document) == _expected(engine, address_id)


@pytest.mark.parametrize(
    ("limit", "skip", "count"),
    [(2, 0, 2), (2, 4, 1), (2, 6, 0), (0, 0, 0), (5, 0, 5), (10, 0, 5)],
)
def test_list_total_with_and_without_a_count_query(
    hosted: HostedProject, varied_addresses: list[str], limit: int, skip: int, count: int
) -> None:
    with hosted.context.db.read() as connection:
        documents, total = repo.list_address_documents(
            connection,
            repo.AddressFilter(project_ids=[hosted.project_id]),
            [repo.Sorting("local_part")],
            repo.Page(limit=limit, skip=skip),
        )
    assert (len(documents), total) == (count, len(varied_addresses))


def test_stale_documents_are_stored_in_one_pass(
    engine: Engine, hosted: HostedProject, varied_addresses: list[str]
) -> None:
    with engine.begin() as connection:
        connection.execute(update(addresses_table).values(document=None, document_version=None))
        connection.execute(
            update(addresses_table)
            .where(addresses_table.c.id == varied_addresses[0])
            .values(document='{"stale": true}', document_version="0000000000000000")
        )
    with engine.connect() as connection:  # the database is shared with other tests: every row is stale now
        total = connection.execute(select(func.count()).select_from(addresses_table)).scalar_one()
    assert total >= len(varied_addresses)
    assert mail_addresses.store_stale_documents(hosted.context, batch=2) == total
    assert mail_addresses.store_stale_documents(hosted.context, batch=2) == 0
    version = MAIL_ADDRESS_DOCUMENT.version(engine.dialect)
    with engine.connect() as connection:
        rows = connection.execute(
            select(addresses_table.c.id, addresses_table.c.document, addresses_table.c.document_version)
        ).all()
    assert all(row.document_version == version for row in rows)
    stored = {row.id: row.document for row in rows}
    for address_id in varied_addresses:
        assert orjson.loads(stored[address_id]) == _expected(engine, address_id)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("active", "is not the name of exactly one object"),  # autoResponder, spamProtection, archive
        ("address", "is not the name of exactly one object"),  # a string, not an object
        ("nothing", "is not the name of exactly one object"),
        ("spamProtection", "holds a value that is no number"),  # its folder is text a row could hold
    ],
)
def test_only_a_unique_object_without_text_can_be_patched_in_place(
    engine: Engine, name: str, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        MAIL_ADDRESS_DOCUMENT.patched_sql_with(engine.dialect, {}, only=name)
