"""The provider's sending switches (`postwerk sending suspend|resume`) on both databases, as the submission
side sees them through Postwerk's socketmap (`sending-disabled`, check_sasl_access of the submission
services): a mailbox's and a delivery box's own `sendingEnabled` (shown by the API), and a whole project's
suspension, which also covers accounts created after it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from postwerk.domain.errors import Conflict, NotFound
from postwerk.domain.srs import SrsKey
from postwerk.domain.submission import SENDING_DISABLED, SENDING_SUSPENDED
from postwerk.mailstack.tables import Tables
from postwerk.service import delivery_boxes, mail_addresses, projects, provider
from postwerk.service.access import ADMIN
from postwerk.store import repository
from postwerk.store.mail_lookups import find_account, find_delivery_box_login
from postwerk.store.repository import Database
from tests.store.conftest import HostedProject

PASSWORD = "a long secret"


def _mailbox(hosted: HostedProject, address: str) -> str:
    return mail_addresses.create(
        hosted.context,
        ADMIN,
        hosted.project_id,
        mail_addresses.NewAddress(
            address=address, mailbox=mail_addresses.NewMailbox(password=PASSWORD, quota_in_bytes=-1)
        ),
    )


def _document(hosted: HostedProject, address_id: str) -> dict[str, object]:
    with hosted.context.db.read() as connection:
        found = repository.get_address_document(connection, address_id)
    assert found is not None
    document: dict[str, object] = json.loads(found.document)
    return document


def test_a_mailbox_and_a_delivery_box_are_suspended_on_their_own(
    engine: Engine, hosted: HostedProject
) -> None:
    tables = Tables(Database(engine), SrsKey(b"k" * 32), "mx.postwerk.test")
    info = _mailbox(hosted, f"Info@{hosted.domain}")
    bob = _mailbox(hosted, f"bob@{hosted.domain}")
    box = delivery_boxes.create(hosted.context, ADMIN, hosted.project_id, "app", PASSWORD)
    with hosted.context.db.read() as connection:
        box_name = str(repository.get_delivery_box(connection, box).name)  # type: ignore[union-attr]

    done = provider.set_mailbox_sending(hosted.context, f"INFO@{hosted.domain.upper()}", enabled=False)
    assert (done.kind, done.id, done.name, done.sending_enabled) == (
        "mailbox",
        info,
        f"Info@{hosted.domain}",
        False,
    )
    assert _document(hosted, info)["mailbox"]["sendingEnabled"] is False  # type: ignore[index]
    assert tables.lookup("sending-disabled", info) == SENDING_DISABLED
    assert tables.lookup("sending-disabled", bob) is None
    done = provider.set_delivery_box_sending(hosted.context, box_name.upper(), enabled=False)
    assert (done.kind, done.id, done.sending_enabled) == ("deliveryBox", box, False)
    assert tables.lookup("sending-disabled", box) == SENDING_DISABLED

    provider.set_mailbox_sending(hosted.context, info, enabled=True)
    provider.set_delivery_box_sending(hosted.context, box, enabled=True)
    assert _document(hosted, info)["mailbox"]["sendingEnabled"] is True  # type: ignore[index]
    assert tables.lookup("sending-disabled", info) is None
    assert tables.lookup("sending-disabled", box) is None

    forwarder = mail_addresses.create(
        hosted.context,
        ADMIN,
        hosted.project_id,
        mail_addresses.NewAddress(
            address=f"sales@{hosted.domain}", forward_addresses=["x@elsewhere.example"]
        ),
    )
    with pytest.raises(Conflict, match="without a mailbox"):
        provider.set_mailbox_sending(hosted.context, forwarder, enabled=False)
    with pytest.raises(NotFound):
        provider.set_mailbox_sending(hosted.context, f"nobody@{hosted.domain}", enabled=False)
    with pytest.raises(NotFound):
        provider.set_delivery_box_sending(hosted.context, "db-nosuchbox", enabled=False)


def test_a_project_suspension_covers_every_account_and_later_ones(
    engine: Engine, hosted: HostedProject
) -> None:
    tables = Tables(Database(engine), SrsKey(b"k" * 32), "mx.postwerk.test")
    info = _mailbox(hosted, f"info@{hosted.domain}")
    muted = _mailbox(hosted, f"muted@{hosted.domain}")
    provider.set_mailbox_sending(hosted.context, muted, enabled=False)  # the customer's own choice
    other_id, _ = projects.create_project(hosted.context, "other")
    other_box = delivery_boxes.create(hosted.context, ADMIN, other_id, "other app", PASSWORD)

    with hosted.context.db.read() as connection:
        short_id = str(repository.find_project(connection, hosted.project_id).short_id)  # type: ignore[union-attr]
    done = provider.set_project_sending(hosted.context, short_id, enabled=False)
    assert (done.kind, done.id, done.name, done.sending_enabled) == (
        "project",
        hosted.project_id,
        short_id,
        False,
    )
    later_box = delivery_boxes.create(hosted.context, ADMIN, hosted.project_id, "made later", PASSWORD)
    later = _mailbox(hosted, f"later@{hosted.domain}")
    for account in (info, muted, later_box, later):
        assert tables.lookup("sending-disabled", account) == SENDING_SUSPENDED, account
    assert tables.lookup("sending-disabled", other_box) is None
    with hosted.context.db.read() as connection:
        account = find_account(connection, later_box)
        assert account is not None and account.project_sending_suspended
        name = str(repository.get_delivery_box(connection, later_box).name)  # type: ignore[union-attr]
        login = find_delivery_box_login(connection, name)
        assert login is not None and login[0].project_sending_suspended
    # The accounts' own switches are untouched (the API shows what the customer set).
    assert _document(hosted, info)["mailbox"]["sendingEnabled"] is True  # type: ignore[index]

    provider.set_project_sending(hosted.context, hosted.project_id, enabled=True)
    for account in (info, later_box, later):
        assert tables.lookup("sending-disabled", account) is None, account
    assert tables.lookup("sending-disabled", muted) == SENDING_DISABLED  # still the customer's choice
    with pytest.raises(NotFound):
        provider.set_project_sending(hosted.context, "p-nosuch", enabled=False)
