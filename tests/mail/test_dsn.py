"""End to end: what happens to mail that leaves when the next hop says no. A hosted sender (no SRS applies)
writes to a forwarding address whose target is outside; the relay host (the test's sink) defers it, rejects
it, or defers it for longer than the queue lifetime:
- deferred, then accepted: Postfix retries, and the message arrives once; the sender hears nothing;
- rejected (550): the sender gets one DSN bounce (RFC 3464: multipart/report, delivery-status), readable
  over IMAP in its mailbox, and the sink never gets the message;
- deferred past the queue lifetime: the same bounce, with the last temporary reason."""

from __future__ import annotations

import email
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import Message

from postwerk.mailstack.layout import POSTFIX
from tests.mail.conftest import Hosted, Stack, fetch_all, imap_login, wait_for_messages
from tests.mail.messages import text_message
from tests.mail.sink import DEFER, REJECT

PASSWORD = "bounces come back here"
QUIET_PERIOD = 4.0  # retries are 1-2 s apart in the test stack
SHORT_LIFETIME = "5s"
ATTEMPT_TIMEOUT = 30.0


def _setup(hosted: Hosted, tag: str) -> tuple[str, str, str]:
    """A hosted sender with a mailbox, and a forwarding address whose target is outside."""
    sender = f"sender-{tag}@{hosted.domain}"
    hosted.create_mailbox(sender, PASSWORD)
    forwarder = f"fw-{tag}@{hosted.domain}"
    target = f"dsn-{tag}@elsewhere.example"
    hosted.create_address({"address": forwarder, "forwardAddresses": [target]})
    return sender, forwarder, target


def _send(stack: Stack, sender: str, recipient: str, tag: str) -> None:
    with stack.smtp() as client:
        sent = text_message(sender, recipient, f"outbound {tag}", "Going out.", message_id=f"{tag}@client")
        assert client.sendmail(sender, [recipient], sent) == {}


def _wait_attempts(stack: Stack, recipient: str, count: int) -> list[str]:
    deadline = time.monotonic() + ATTEMPT_TIMEOUT
    while len(attempts := stack.sink.attempts(recipient)) < count:
        assert time.monotonic() < deadline, f"{attempts}\n{stack.log_tail()}"
        time.sleep(0.1)
    return attempts


def _mailbox(stack: Stack, login: str) -> list[bytes]:
    client = imap_login(stack, login, PASSWORD)
    try:
        return fetch_all(client)
    finally:
        client.logout()


def _delivery_status(raw: bytes) -> tuple[Message, list[Message]]:
    """The RFC 3464 report of a bounce: its top-level message and the delivery-status fields (per message,
    then per recipient)."""
    report = email.message_from_bytes(raw, policy=policy.compat32)
    assert report.get_content_type() == "multipart/report", report.get_content_type()
    assert report.get_param("report-type") == "delivery-status"
    (status,) = [part for part in report.walk() if part.get_content_type() == "message/delivery-status"]
    fields = status.get_payload()
    assert isinstance(fields, list) and len(fields) >= 2, fields
    return report, fields


def _assert_bounce(raw: bytes, *, sender: str, target: str, forwarder: str, status: str, tag: str) -> None:
    assert raw.startswith(b"Return-Path: <>"), raw[:200]
    report, fields = _delivery_status(raw)
    assert report["To"] == sender
    assert "<MAILER-DAEMON@" in report["From"]
    recipient = fields[1]
    assert recipient["Final-Recipient"] == f"rfc822; {target}"
    assert recipient["Original-Recipient"] == f"rfc822;{forwarder}"
    assert recipient["Action"] == "failed"
    assert recipient["Status"] == status
    assert status.split(".")[0] in recipient["Diagnostic-Code"]
    # The returned message (or its headers) lets the sender tell which one failed.
    returned = [p for p in report.walk() if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")]
    assert returned and tag in returned[0].as_string()


def test_deferred_mail_is_retried_and_delivered_once(stack: Stack, hosted: Hosted) -> None:
    tag = uuid.uuid4().hex[:12]
    sender, forwarder, target = _setup(hosted, tag)
    stack.sink.defer(target)
    try:
        _send(stack, sender, forwarder, tag)
        assert _wait_attempts(stack, target, 2)[:2] == [DEFER, DEFER]  # the first try and a retry
    finally:
        stack.sink.accept(target)
    (delivered,) = stack.sink.wait_for(lambda m: tag.encode() in m.content, log=stack.log_tail)
    assert delivered.sender == sender and delivered.recipients == (target,)
    time.sleep(QUIET_PERIOD)
    assert [m for m in stack.sink.messages if tag.encode() in m.content] == [delivered]
    assert stack.sink.attempts(target).count("250") == 1
    assert _mailbox(stack, sender) == []  # no bounce, no delay warning


def test_a_permanent_rejection_bounces_to_the_hosted_sender(stack: Stack, hosted: Hosted) -> None:
    tag = uuid.uuid4().hex[:12]
    sender, forwarder, target = _setup(hosted, tag)
    stack.sink.reject(target)
    try:
        _send(stack, sender, forwarder, tag)
        (bounce,) = wait_for_messages(stack, sender, PASSWORD, 1)
    finally:
        stack.sink.accept(target)
    _assert_bounce(bounce, sender=sender, target=target, forwarder=forwarder, status="5.1.1", tag=tag)
    assert b"rejected by the test sink" in bounce
    assert stack.sink.attempts(target) == [REJECT]  # never retried
    time.sleep(QUIET_PERIOD)
    assert len(_mailbox(stack, sender)) == 1  # one bounce
    assert not [m for m in stack.sink.messages if tag.encode() in m.content]


@contextmanager
def _queue_lifetime(stack: Stack, lifetime: str) -> Iterator[None]:
    """The stack's queue lifetime shortened for a while (its 120 s would make the test wait minutes)."""
    config = stack.mail.layout.postfix_config
    main_cf = config / "main.cf"
    original = main_cf.read_bytes()

    def reload() -> None:
        result = subprocess.run(
            [str(POSTFIX), "-c", str(config), "reload"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr

    subprocess.run(
        [
            "postconf",
            "-c",
            str(config),
            "-e",
            f"maximal_queue_lifetime={lifetime}",
            f"bounce_queue_lifetime={lifetime}",
        ],
        check=True,
    )
    reload()
    try:
        yield
    finally:
        main_cf.write_bytes(original)
        reload()


def test_mail_deferred_past_the_queue_lifetime_bounces(stack: Stack, hosted: Hosted) -> None:
    tag = uuid.uuid4().hex[:12]
    sender, forwarder, target = _setup(hosted, tag)
    stack.sink.defer(target)
    try:
        with _queue_lifetime(stack, SHORT_LIFETIME):
            time.sleep(1)  # the queue manager restarted with the new lifetime
            _send(stack, sender, forwarder, tag)
            (bounce,) = wait_for_messages(stack, sender, PASSWORD, 1)
    finally:
        stack.sink.accept(target)
    _assert_bounce(bounce, sender=sender, target=target, forwarder=forwarder, status="4.3.0", tag=tag)
    assert b"deferred by the test sink" in bounce
    attempts = stack.sink.attempts(target)
    assert len(attempts) >= 2 and set(attempts) == {DEFER}, attempts  # retried until the lifetime ended
    time.sleep(QUIET_PERIOD)
    assert len(_mailbox(stack, sender)) == 1
    assert not [m for m in stack.sink.messages if tag.encode() in m.content]
