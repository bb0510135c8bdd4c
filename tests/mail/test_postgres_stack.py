"""End to end on PostgreSQL: the same mail servers, reading Postwerk's schema through their pgsql clients.

The lookup queries themselves run on both databases in test_lookup_queries.py; this holds what only the
real clients show: Postfix 3.7's pgsql client talks Latin-1 (`client_encoding` LATIN1 on every
connection), so a UTF-8 address is found, and a UTF-8 answer comes back, only because the rendered maps
convert both ways (`postwerk.mailstack.render.Database.map_file`).
"""

from __future__ import annotations

import uuid

from tests.mail.conftest import Hosted, Stack, split_trace, wait_for_messages
from tests.mail.messages import text_message

PASSWORD = "a postgres mailbox secret"


def test_utf8_and_ascii_recipients_are_found_and_delivered(
    postgres_stack: Stack, postgres_hosted: Hosted
) -> None:
    stack, hosted = postgres_stack, postgres_hosted
    address = f"пошта@{hosted.idn_domain}"
    hosted.create_mailbox(address, PASSWORD)
    hosted.create_mailbox(f"plain@{hosted.domain}", PASSWORD)
    ascii_domain = hosted.idn_domain.encode("idna").decode()
    sender = "відправник@пример.укр"
    sent = text_message(f"Відправник <{sender}>", address, "Привіт", "Текст листа.")
    with stack.smtp() as client:
        refused = client.sendmail(
            sender,
            [address, f"ПОШТА@{ascii_domain}", f"plain@{hosted.domain}"],
            sent,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
        assert refused == {}
        assert client.mail("sender@outside.example")[0] == 250
        code, reply = client.rcpt(f"nobody@{ascii_domain}")
        assert (code, reply.split()[0]) == (550, b"5.1.1"), reply
        client.rset()
    stored = wait_for_messages(stack, address, PASSWORD, 2)
    assert all(split_trace(message, sent) for message in stored)
    assert len(wait_for_messages(stack, f"plain@{hosted.domain}", PASSWORD, 1)) == 1


def test_a_utf8_forward_target_outside_is_relayed(postgres_stack: Stack, postgres_hosted: Hosted) -> None:
    stack, hosted = postgres_stack, postgres_hosted
    forwarder = f"пересилання@{hosted.idn_domain}"
    target = "друг@деінде.укр"
    hosted.create_address({"address": forwarder, "forwardAddresses": [target]})
    tag = uuid.uuid4().hex
    sent = text_message(f"sender@{hosted.domain}", forwarder, f"forwarded {tag}", "Body.")
    with stack.smtp() as client:
        refused = client.sendmail(
            f"sender@{hosted.domain}", [forwarder], sent, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    assert refused == {}
    (relayed,) = stack.sink.wait_for(lambda message: tag.encode() in message.content, log=stack.log_tail)
    # Relayed as stored: the domain in its A-label form.
    assert relayed.recipients == ("друг@" + "деінде.укр".encode("idna").decode(),)
