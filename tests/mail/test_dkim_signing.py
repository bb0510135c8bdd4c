"""End to end: the submission milter (`postwerk.dkim`) in Postwerk's own Postfix. Mail submitted by a
delivery box or a mailbox leaves DKIM-signed, and the signature verifies with dkimpy against the public key
exactly as `postwerk domain records` publishes it; a header From: the login may not send as is refused with
553 5.7.1 at the end of DATA; mail that only passes through (the MX, forwards) is never signed."""

from __future__ import annotations

import smtplib
import uuid

import dkim
import pytest

from postwerk.service import dkim as dkim_service
from tests.mail.conftest import (
    Hosted,
    Stack,
    submission_client,
    wait_for_messages,
)
from tests.mail.messages import text_message

PASSWORD = "signing secret 1"
BOX_PASSWORD = "signing box secret 1"
EXTERNAL = "partner@elsewhere.example"


def _submit(stack: Stack, login: str, password: str) -> smtplib.SMTP:
    return submission_client(stack, login, password)


def _delivery_box(hosted: Hosted) -> str:
    response = hosted.api.post(
        f"/v2/projects/{hosted.project_id}/delivery-boxes",
        json={"description": "signing test", "password": BOX_PASSWORD},
    )
    assert response.status_code == 201, response.text
    return str(hosted.api.get(f"/v2/delivery-boxes/{response.json()['id']}").json()["name"])


def _verifies(stack: Stack, message: bytes, domain: str) -> bool:
    """dkimpy's verdict, with DNS answered from the domain's records as Postwerk lists them."""
    records = dkim_service.domain_records(stack.context, domain).records
    published = {f"{r.name}.".encode(): r.value.encode() for r in records if r.purpose == "dkim"}
    return bool(dkim.verify(message, dnsfunc=lambda name, timeout=5: published.get(name)))


def _signature_domain(message: bytes) -> bytes | None:
    headers = message.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    for line in headers.split(b"\r\n"):
        if line.lower().startswith(b"dkim-signature:"):
            tags = dict(
                part.strip().split(b"=", 1) for part in line.split(b":", 1)[1].split(b";") if b"=" in part
            )
            return tags[b"d"]
    return None


def test_a_delivery_box_sends_signed_mail_that_verifies(stack: Stack, hosted: Hosted) -> None:
    name = _delivery_box(hosted)
    for domain in (hosted.domain, hosted.idn_domain):
        tag = uuid.uuid4().hex
        sender = f"orders@{domain}"
        envelope = (
            sender
            if domain.isascii()
            else f"orders@{dkim_service.domain_records(stack.context, domain).domain.ascii}"
        )
        message = text_message(f"Shop <{envelope}>", EXTERNAL, f"order {tag}", "Thank you.   \r\nBye")
        with _submit(stack, name, BOX_PASSWORD) as client:
            assert client.sendmail(envelope, [EXTERNAL], message) == {}
        (relayed,) = stack.sink.wait_for(lambda m, tag=tag: tag.encode() in m.content, log=stack.log_tail)
        ascii_domain = envelope.rsplit("@", 1)[1]
        assert _signature_domain(relayed.content) == ascii_domain.encode(), relayed.content[:600]
        assert _verifies(stack, relayed.content, ascii_domain), relayed.content[:1500]
        # Anything changed on the way breaks it.
        assert not _verifies(stack, relayed.content.replace(b"Thank you.", b"Thank you!"), ascii_domain)


def test_a_mailbox_signs_with_a_rotated_key_at_once(stack: Stack, hosted: Hosted) -> None:
    me = f"sender@{hosted.domain}"
    hosted.create_mailbox(me, PASSWORD)
    before = dkim_service.domain_records(stack.context, hosted.domain).keys[0].selector
    dkim_service.rotate(stack.context, hosted.domain)
    tag = uuid.uuid4().hex
    with _submit(stack, me, PASSWORD) as client:
        assert client.sendmail(me, [EXTERNAL], text_message(f"Me <{me}>", EXTERNAL, tag, "Hi.")) == {}
    (relayed,) = stack.sink.wait_for(lambda m: tag.encode() in m.content, log=stack.log_tail)
    assert _verifies(stack, relayed.content, hosted.domain)
    assert f"s={before};".encode() not in relayed.content.replace(b"\r\n", b"").replace(b" ", b"")


@pytest.mark.parametrize("header_from", ["colleague", "nobody", "two"])
def test_a_foreign_header_from_is_refused_at_the_end_of_data(
    stack: Stack, hosted: Hosted, header_from: str
) -> None:
    me, colleague = f"me-{header_from}@{hosted.domain}", f"colleague-{header_from}@{hosted.domain}"
    hosted.create_mailbox(me, PASSWORD)
    hosted.create_mailbox(colleague, PASSWORD)
    shown = {"colleague": colleague, "nobody": "ceo@elsewhere.example", "two": f"{me}, {colleague}"}[
        header_from
    ]
    with _submit(stack, me, PASSWORD) as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(me, [EXTERNAL], text_message(shown, EXTERNAL, "spoof", "Pay this invoice."))
    assert refused.value.smtp_code == 553
    assert refused.value.smtp_error.startswith(b"5.7.1 "), refused.value.smtp_error
    assert b"From:" in refused.value.smtp_error


def test_mail_that_passes_through_is_not_signed(stack: Stack, hosted: Hosted) -> None:
    reader = f"reader@{hosted.domain}"
    hosted.create_mailbox(reader, PASSWORD)
    hosted.create_address({"address": f"relay@{hosted.domain}", "forwardAddresses": [EXTERNAL]})
    tag = uuid.uuid4().hex
    with stack.smtp() as client:
        message = text_message("friend@outside.example", reader, f"in {tag}", "Hello.")
        assert client.sendmail("friend@outside.example", [reader, f"relay@{hosted.domain}"], message) == {}
    (stored,) = wait_for_messages(stack, reader, PASSWORD, 1)
    assert b"dkim-signature" not in stored.lower()
    (forwarded,) = stack.sink.wait_for(lambda m: tag.encode() in m.content, log=stack.log_tail)
    assert b"dkim-signature" not in forwarded.content.lower()
