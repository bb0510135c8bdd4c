"""The submission answers of Postwerk's socketmap tables on both databases: the owners of an envelope sender
(`sender-owners`, Postfix's smtpd_sender_login_maps) and the refusal of accounts whose sending is disabled
(`sending-disabled`, check_sasl_access), from data made through the service layer."""

from __future__ import annotations

import unicodedata

from sqlalchemy import Engine, text

from postwerk.domain.srs import SrsKey
from postwerk.domain.submission import SENDING_DISABLED
from postwerk.mailstack.tables import Tables, answer
from postwerk.service import delivery_boxes, mail_addresses, projects
from postwerk.service.access import ADMIN
from postwerk.store import repository
from postwerk.store.repository import Database
from tests.store.conftest import HostedProject

PASSWORD = "a long secret"


def _mailbox(hosted: HostedProject, address: str, *forwards: str) -> str:
    return mail_addresses.create(
        hosted.context,
        ADMIN,
        hosted.project_id,
        mail_addresses.NewAddress(
            address=address,
            forward_addresses=forwards,
            mailbox=mail_addresses.NewMailbox(password=PASSWORD, quota_in_bytes=-1),
        ),
    )


def _forwarder(hosted: HostedProject, address: str, *forwards: str) -> str:
    return mail_addresses.create(
        hosted.context,
        ADMIN,
        hosted.project_id,
        mail_addresses.NewAddress(address=address, forward_addresses=forwards),
    )


def test_sender_owners_and_sending_disabled(engine: Engine, hosted: HostedProject) -> None:
    domain = hosted.domain
    idn = f"bücher-{domain}"
    projects.add_domain(hosted.context, idn, hosted.project_id)
    info = _mailbox(hosted, f"Info@{domain}")
    bob = _mailbox(hosted, f"bob@{domain}")
    umlaut = _mailbox(hosted, f"Ärger@{idn}")
    _forwarder(hosted, f"sales@{domain}", f"INFO@{domain}", f"bob+sales@{domain}", "x@elsewhere.example")
    box = delivery_boxes.create(hosted.context, ADMIN, hosted.project_id, "app", PASSWORD)
    # Another project's mailbox and delivery box own nothing here.
    other_id, other_short = projects.create_project(hosted.context, "other")
    other_domain = f"{other_short.removeprefix('p-')}.other.example"
    projects.add_domain(hosted.context, other_domain, other_id)
    other_box = delivery_boxes.create(hosted.context, ADMIN, other_id, "other app", PASSWORD)

    tables = Tables(Database(engine), SrsKey(b"k" * 32), "mx.postwerk.test")
    ascii_idn = idn.encode("idna").decode()
    expected = {
        f"info@{domain}": [info, box],
        f"info+tag@{domain}": [info, box],
        f"sales@{domain}": [info, bob, box],
        f"noreply@{domain}": [box],
        f"@{domain}": [box],
        f"ärger@{idn}": [umlaut, box],
        unicodedata.normalize("NFD", f"ärger@{ascii_idn}"): [umlaut, box],
        f"x@{other_domain}": [other_box],
    }
    for sender, owners in expected.items():
        assert tables.lookup("sender-owners", sender) == ",".join(owners), sender
    for sender in ("info@elsewhere.example", "no-at-sign", f"info@sub.{domain}"):
        assert tables.lookup("sender-owners", sender) is None, sender
    assert answer(tables, f"sender-owners info@{domain}".encode()) == f"OK {info},{box}".encode()
    assert answer(tables, b"sender-owners info@elsewhere.example") == b"NOTFOUND "

    for account in (info, box, other_box, "no-such-account"):
        assert tables.lookup("sending-disabled", account) is None, account
    with hosted.context.db.write() as connection:
        repository.update_address(connection, info, {"sending_enabled": False})
        repository.update_delivery_box(connection, box, {"sending_enabled": False})
        repository.update_delivery_box(connection, other_box, {"authentication_enabled": False})
    for account in (info, box, other_box, info.upper()):
        assert tables.lookup("sending-disabled", account) == SENDING_DISABLED, account
    assert tables.lookup("sending-disabled", bob) is None
    # Owning a sender does not depend on sending being enabled (that refusal has its own reply).
    assert tables.lookup("sender-owners", f"info@{domain}") == f"{info},{box}"


def test_the_sender_lookups_are_index_probes(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    from postwerk.store.mail_lookups import _DOMAIN_DELIVERY_BOXES, _sender_addresses_statement

    for statement in (
        _sender_addresses_statement(1).params(key0="a@b.example"),
        _DOMAIN_DELIVERY_BOXES.params(domain="b.example"),
    ):
        compiled = statement.compile(
            engine, compile_kwargs={"literal_binds": True, "render_postcompile": True}
        )
        with engine.connect() as connection:
            plan = " ".join(
                str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
        assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), plan
