"""End to end: mail that leaves. Forward targets outside the hosted domains are relayed through Postfix's
queue to the relay host (a sink of the test's own on 127.0.0.1), with an SRS envelope sender that reverses
when a bounce comes back; mail from hosted domains is never rewritten; loops end with one clear bounce."""

from __future__ import annotations

import re
import smtplib
import subprocess
import time
import uuid

import pytest

from postwerk.mailstack.layout import Layout
from postwerk.mailstack.render import render
from postwerk.service import projects as project_service
from postwerk.settings import Settings
from tests.mail.conftest import Hosted, Stack, split_trace, wait_for_messages
from tests.mail.sink import Received

PASSWORD = "forwarded out through the queue"
QUIET_PERIOD = 3.0  # long enough for a storm to show (retries are 1-2 s in the test stack)
SRS0 = re.compile(r"^SRS0=[a-z2-7]{4}=[a-z2-7]{2}=([^=]+)=(.+)@(.+)$", re.IGNORECASE)


def _message(sender: str, recipient: str, *, extra_headers: tuple[str, ...] = ()) -> tuple[str, bytes]:
    tag = uuid.uuid4().hex
    lines = [
        *extra_headers,
        f"From: {sender}",
        f"To: {recipient}",
        f"Subject: outbound {tag}",
        f"Message-ID: <{tag}@client.postwerk.test>",
        "",
        "Forwarded body.",
        "",
    ]
    return tag, "\r\n".join(lines).encode()


def _with_tag(tag: str) -> object:
    return lambda message: tag.encode() in message.content


def test_forwarding_to_an_outside_target_is_relayed_with_an_srs_sender(stack: Stack, hosted: Hosted) -> None:
    forwarder = f"out@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": ["Friend@elsewhere.example"]})
    tag, sent = _message("Alice@outside.example", forwarder)
    with stack.smtp() as client:
        assert client.sendmail("Alice@outside.example", [forwarder], sent) == {}
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert relayed.recipients == ("Friend@elsewhere.example",)
    match = SRS0.match(relayed.sender)
    assert match is not None, relayed.sender
    assert match.groups()[0] == "outside.example" and match.groups()[2] == stack.settings.mail_hostname
    # The message itself is untouched: the sent bytes, with only trace headers on top.
    split_trace(relayed.content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), sent)

    # A bounce to the SRS address reaches the original sender (through the relay host again).
    bounce_tag, bounce = _message("MAILER-DAEMON@elsewhere.example", relayed.sender)
    with stack.smtp() as client:
        assert client.sendmail("", [relayed.sender], bounce) == {}
    (returned,) = stack.sink.wait_for(_with_tag(bounce_tag), log=stack.log_tail)
    assert returned.sender == ""
    assert [address.lower() for address in returned.recipients] == ["alice@outside.example"]


def test_forged_or_foreign_srs_addresses_are_refused(stack: Stack) -> None:
    hostname = stack.settings.mail_hostname
    with stack.smtp() as client:
        assert client.mail("")[0] == 250
        for forged in (f"SRS0=aaaa=aa=outside.example=alice@{hostname}", f"srs0=x@{hostname}"):
            code, reply = client.rcpt(forged)
            assert (code, reply.split()[0]) == (550, b"5.1.1"), (forged, reply)


def test_a_mailbox_keeps_its_copy_and_forwards_out(stack: Stack, hosted: Hosted) -> None:
    address = f"keeper@{hosted.domain}"
    hosted.create_address(
        {
            "address": address,
            "forwardAddresses": ["copy@elsewhere.example"],
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    tag, sent = _message("bob@outside.example", address)
    with stack.smtp() as client:
        assert client.sendmail("bob@outside.example", [address], sent) == {}
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert relayed.recipients == ("copy@elsewhere.example",)
    assert SRS0.match(relayed.sender)
    (kept,) = wait_for_messages(stack, address, PASSWORD, 1)
    split_trace(kept, sent)
    # The local copy keeps the original envelope sender.
    assert kept.startswith(b"Return-Path: <bob@outside.example>")


def test_mail_from_hosted_domains_is_never_rewritten_and_hosting_follows_the_domain_table(
    stack: Stack, hosted: Hosted
) -> None:
    forwarder = f"relay-me@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": ["target@elsewhere.example"]})
    sender = f"colleague@{hosted.domain}"
    tag, sent = _message(sender, forwarder)
    with stack.smtp() as client:
        assert client.sendmail(sender, [forwarder], sent) == {}
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert relayed.sender == sender

    # A domain hosted from now on counts at once, with no restart; an outside one is rewritten.
    _, short_id = project_service.create_project(stack.context, "hosted later")
    later = f"later-{short_id.removeprefix('p-')}.example.net"
    outside_sender = f"someone@{later}"
    tag, sent = _message(outside_sender, forwarder)
    with stack.smtp() as client:
        assert client.sendmail(outside_sender, [forwarder], sent) == {}
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert SRS0.match(relayed.sender), relayed.sender
    project_service.add_domain(stack.context, later, short_id)
    tag, sent = _message(outside_sender, forwarder)
    with stack.smtp() as client:
        assert client.sendmail(outside_sender, [forwarder], sent) == {}
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert relayed.sender == outside_sender


def _bounces_for(stack: Stack, recipient: str, tag: str) -> list[Received]:
    return [
        message
        for message in stack.sink.messages
        if message.sender == "" and recipient in message.recipients and tag.encode() in message.content
    ]


def test_a_forwarding_loop_inside_postwerk_delivers_each_destination_once(
    stack: Stack, hosted: Hosted
) -> None:
    """The routes answer every final destination of a recipient at once, each address followed once: a loop
    between hosted addresses that also forwards outside sends that copy out once, and nothing goes round."""
    ping, pong = f"ping@{hosted.domain}", f"pong@{hosted.domain}"
    hosted.create_address({"address": ping, "forwardAddresses": [pong, "outside-copy@elsewhere.example"]})
    hosted.create_address({"address": pong, "forwardAddresses": [ping]})
    tag, sent = _message("looper@outside.example", ping)
    with stack.smtp() as client:
        assert client.sendmail("looper@outside.example", [pong], sent) == {}
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert relayed.recipients == ("outside-copy@elsewhere.example",)
    time.sleep(QUIET_PERIOD)
    assert [m for m in stack.sink.messages if tag.encode() in m.content] == [relayed]


def test_a_pure_forwarding_loop_is_refused_at_rcpt(stack: Stack, hosted: Hosted) -> None:
    """Forwards that lead only round in a circle (no mailbox, nothing outside) can never be delivered:
    refused at once with a clear answer, never accepted and never a storm."""
    ring = [f"ring-{n}@{hosted.domain}" for n in range(3)]
    for n, address in enumerate(ring):
        hosted.create_address({"address": address, "forwardAddresses": [ring[(n + 1) % 3]]})
    with stack.smtp() as client:
        assert client.mail("looper@outside.example")[0] == 250
        for recipient in (ring[1], f"ring-2+tag@{hosted.domain}"):
            code, reply = client.rcpt(recipient)
            assert (code, reply.split()[0]) == (550, b"5.4.6"), reply
            assert b"mail forwarding loop" in reply


def test_a_loop_that_gets_past_rcpt_bounces_once_with_5_4_6(stack: Stack, hosted: Hosted) -> None:
    """Mail that no RCPT check saw (here: local submission through Postfix's sendmail) is ended by the
    routes themselves: they answer the loop route, and the message bounces once, with 5.4.6, to its sender."""
    first, second = f"circle-a@{hosted.domain}", f"circle-b@{hosted.domain}"
    hosted.create_address({"address": first, "forwardAddresses": [second]})
    hosted.create_address({"address": second, "forwardAddresses": [first]})
    tag, sent = _message("looper@outside.example", first)
    submitted = subprocess.run(
        [
            "/usr/sbin/sendmail",
            "-C",
            str(stack.mail.layout.postfix_config),
            "-f",
            "looper@outside.example",
            "-i",
            first,
        ],
        input=sent,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert submitted.returncode == 0, submitted.stderr
    (bounce,) = stack.sink.wait_for(
        lambda message: message.sender == "" and tag.encode() in message.content, log=stack.log_tail
    )
    assert bounce.recipients == ("looper@outside.example",)
    assert b"5.4.6" in bounce.content and b"mail forwarding loop" in bounce.content, bounce.content[:3000]
    time.sleep(QUIET_PERIOD)
    assert [m for m in stack.sink.messages if tag.encode() in m.content] == [bounce]


def _hops(count: int) -> tuple[str, ...]:
    """Received headers as if the message had gone round a loop between mail systems many times."""
    return tuple(
        f"Received: from hop{n}.elsewhere.example by hop{n + 1}.elsewhere.example; "
        "Thu, 26 Nov 2026 10:00:00 +0000"
        for n in range(count)
    )


def test_a_loop_between_mail_systems_ends_at_the_hop_limit(stack: Stack, hosted: Hosted) -> None:
    """Postfix counts Received headers (hopcount_limit, 50): past it, mail is refused at DATA; one hop
    short of it, the MX takes it and the SRS pass (a hop of its own) bounces it, once."""
    forwarder = f"hops@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": ["far@elsewhere.example"]})
    tag, sent = _message("origin@outside.example", forwarder, extra_headers=_hops(50))
    with stack.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("origin@outside.example", [forwarder], sent)
    assert refused.value.smtp_code == 554 and b"too many hops" in refused.value.smtp_error

    tag, sent = _message("origin@outside.example", forwarder, extra_headers=_hops(48))
    with stack.smtp() as client:
        assert client.sendmail("origin@outside.example", [forwarder], sent) == {}
    stack.sink.wait_for(
        lambda message: message.sender == "" and tag.encode() in message.content, log=stack.log_tail
    )
    time.sleep(QUIET_PERIOD)
    (bounce,) = _bounces_for(stack, "origin@outside.example", tag)
    assert b"too many hops" in bounce.content, bounce.content[:3000]
    assert [m for m in stack.sink.messages if tag.encode() in m.content and m.sender != ""] == []


def test_direct_mx_delivery_and_relay_login_are_rendered(tmp_path: object) -> None:
    layout = Layout.embedded(__import__("pathlib").Path("/var/tmp/postwerk-render-check"))
    direct = Settings(data_dir=layout.boxes.parent.parent, mail_hostname="mx.provider.example")
    files = {file.path.name: file for file in render(direct, layout, _accounts(), 0)}
    main_cf = files["main.cf"].content
    assert re.search(r"^relayhost =\s*$", main_cf, re.MULTILINE)
    assert "smtp_tls_security_level = may" in main_cf
    assert "smtp_sasl_password_maps" not in main_cf
    assert "postwerk-relay-password" not in files

    relayed = Settings(
        data_dir=layout.boxes.parent.parent,
        mail_hostname="mx.provider.example",
        relay_host="smarthost.example.net:587",
        relay_tls="encrypt",
        relay_user="provider",
        relay_password="relay login secret",
    )
    files = {file.path.name: file for file in render(relayed, layout, _accounts(), 0)}
    main_cf = files["main.cf"].content
    assert "relayhost = [smarthost.example.net]:587" in main_cf
    assert "smtp_tls_security_level = encrypt" in main_cf
    assert "smtp_sasl_auth_enable = yes" in main_cf
    assert "relay login secret" not in main_cf
    login = files["postwerk-relay-password"]
    assert login.mode == 0o600
    assert login.content == "[smarthost.example.net]:587 provider:relay login secret\n"


def _accounts() -> object:
    from postwerk.mailstack.layout import EMBEDDED_ACCOUNTS

    return EMBEDDED_ACCOUNTS
