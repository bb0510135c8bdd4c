"""The lookup views the mail servers will read: every view answers on both databases, and a lookup by
address is a single index probe."""

from __future__ import annotations

from sqlalchemy import Engine, text

from postwerk.service import delivery_boxes, mail_addresses
from postwerk.service.access import ADMIN
from tests.store.conftest import HostedProject


def test_views_reflect_the_api_state(engine: Engine, hosted: HostedProject) -> None:
    context, project_id, domain = hosted.context, hosted.project_id, hosted.domain
    mailbox = mail_addresses.create(
        context,
        ADMIN,
        project_id,
        mail_addresses.NewAddress(
            address=f"Box@{domain}",
            forward_addresses=["copy@elsewhere.example"],
            mailbox=mail_addresses.NewMailbox(password="a long secret", quota_in_bytes=-1),
        ),
    )
    mail_addresses.create(
        context,
        ADMIN,
        project_id,
        mail_addresses.NewAddress(
            address=f"fwd@{domain}", forward_addresses=[f"box@{domain}", "x@пример.рф"]
        ),
    )
    delivery_boxes.create(context, ADMIN, project_id, "app", "another long secret")
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT project_id FROM mail_domains WHERE domain = :d"), {"d": domain}
            ).scalar()
            == project_id
        )
        row = connection.execute(
            text("SELECT mailbox_id, password, quota_bytes FROM mail_mailboxes WHERE address = :a"),
            {"a": f"box@{domain}"},
        ).one()
        assert row.mailbox_id == mailbox and row.password.startswith("{ARGON2ID}") and row.quota_bytes == -1
        aliases = (
            connection.execute(
                text("SELECT destination FROM mail_aliases WHERE source = :s ORDER BY 1"),
                {"s": f"fwd@{domain}"},
            )
            .scalars()
            .all()
        )
        assert aliases == [f"box@{domain}", "x@xn--e1afmkfd.xn--p1ai"]
        kinds = (
            connection.execute(
                text("SELECT kind FROM mail_logins WHERE project_id = :p ORDER BY kind"), {"p": project_id}
            )
            .scalars()
            .all()
        )
        assert kinds == ["deliverybox", "mailbox"]


def test_address_lookup_is_one_index_probe(engine: Engine) -> None:
    query = "SELECT password FROM mail_mailboxes WHERE address = 'a@b.example'"
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {query}")))
            assert "USING INDEX" in plan and "SCAN" not in plan, plan
        else:
            connection.execute(text("SET enable_seqscan = off"))  # tiny test tables: ask what the plan can be
            plan = " ".join(row[0] for row in connection.execute(text(f"EXPLAIN {query}")))
            assert "Index" in plan and "Seq Scan" not in plan, plan
