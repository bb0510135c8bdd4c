"""End to end: SMTP smuggling (CVE-2023-51764). A client that hides `<LF>.<LF>` (or `<CR><LF>.<LF>`, or
`<LF>.<CR><LF>`) inside DATA, followed by a second MAIL FROM, RCPT and DATA, must never get two messages
delivered, neither into a hosted mailbox nor relayed to the next hop: Postwerk's Postfix reads bare LF line
ends as CRLF but ends DATA only at `<CR><LF>.<CR><LF>` (`smtpd_forbid_bare_newline = normalize`, with no
exclusions, so not even loopback clients get past it)."""

from __future__ import annotations

import email
import socket
import time
import uuid
from email import policy

import pytest

from postwerk.settings import split_host_port
from tests.mail.conftest import NETWORK_TIMEOUT, Hosted, Stack, wait_for_messages

PASSWORD = "smuggling is never delivered"
QUIET_PERIOD = 3.0
# What an attacker puts between the first message and the smuggled commands.
SEPARATORS = {"lf-dot-lf": b"\n.\n", "crlf-dot-lf": b"\r\n.\n", "lf-dot-crlf": b"\n.\r\n"}


class _Session:
    """A raw SMTP client: the bytes go on the wire exactly as written (smtplib would normalise them)."""

    def __init__(self, stack: Stack) -> None:
        host, port = split_host_port(stack.settings.smtp)
        self.socket = socket.create_connection((host, port), timeout=NETWORK_TIMEOUT)
        self.buffer = b""

    def reply(self) -> tuple[int, bytes]:
        """One (possibly multi-line) reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.socket.recv(4096)
                if not chunk:
                    raise ConnectionError(f"connection closed after {lines!r}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines)

    def command(self, line: bytes) -> tuple[int, bytes]:
        self.socket.sendall(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.socket.close()


def _smuggle(
    stack: Stack, sender: str, recipient: str, separator: bytes, tag: str
) -> list[tuple[int, bytes]]:
    """One SMTP session with a smuggling attempt; returns every reply after the 354."""
    session = _Session(stack)
    try:
        assert session.reply()[0] == 220
        assert session.command(b"EHLO client.postwerk.test")[0] == 250
        assert session.command(f"MAIL FROM:<{sender}>".encode())[0] == 250
        assert session.command(f"RCPT TO:<{recipient}>".encode())[0] == 250
        assert session.command(b"DATA")[0] == 354
        smuggled = (
            f"MAIL FROM:<boss@{recipient.split('@')[1]}>\r\n"
            f"RCPT TO:<{recipient}>\r\n"
            "DATA\r\n"
            f"From: boss@{recipient.split('@')[1]}\r\n"
            f"To: {recipient}\r\n"
            f"Subject: smuggled {tag}\r\n"
            "\r\n"
            "Please wire the money.\r\n"
        ).encode()
        payload = (
            f"From: {sender}\r\nTo: {recipient}\r\nSubject: carrier {tag}\r\n"
            f"Message-ID: <{tag}@client.postwerk.test>\r\n\r\nHarmless text.\r\n"
        ).encode()
        session.socket.sendall(payload.rstrip(b"\r\n") + separator + smuggled + b".\r\n")
        replies = [session.reply()]
        # Whatever the server made of it: a second reply would be the smuggled message's.
        replies.append(session.command(b"QUIT"))
        return replies
    finally:
        session.close()


def _subject(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=policy.default)["subject"])


@pytest.mark.parametrize("variant", sorted(SEPARATORS))
def test_smuggling_into_a_mailbox_delivers_one_message(stack: Stack, hosted: Hosted, variant: str) -> None:
    tag = uuid.uuid4().hex
    victim = f"victim-{variant}@{hosted.domain}"
    hosted.create_mailbox(victim, PASSWORD)
    replies = _smuggle(stack, "attacker@outside.example", victim, SEPARATORS[variant], tag)
    assert replies[0][0] == 250, replies  # normalised: one message, accepted
    assert replies[1][0] == 221, replies  # the "MAIL FROM" inside was content, not a command
    (stored,) = wait_for_messages(stack, victim, PASSWORD, 1)
    time.sleep(QUIET_PERIOD)
    stored_all = wait_for_messages(stack, victim, PASSWORD, 1)
    assert len(stored_all) == 1, [_subject(m) for m in stored_all]
    assert _subject(stored) == f"carrier {tag}"
    # The smuggled lines are the message's own text; no line of it is a bare dot.
    assert f"Subject: smuggled {tag}".encode() in stored
    assert b"\n.\n" not in stored.replace(b"\r\n", b"\n")


def test_smuggling_through_a_forward_is_relayed_as_one_message(stack: Stack, hosted: Hosted) -> None:
    tag = uuid.uuid4().hex
    target = f"smuggle-{tag[:8]}@elsewhere.example"
    forwarder = f"relay-{tag[:8]}@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": [target]})
    for separator in SEPARATORS.values():
        replies = _smuggle(stack, f"sender@{hosted.domain}", forwarder, separator, tag)
        assert [code for code, _ in replies] == [250, 221], replies
    relayed = stack.sink.wait_for(lambda m: tag.encode() in m.content, count=3, log=stack.log_tail)
    time.sleep(QUIET_PERIOD)
    relayed = [m for m in stack.sink.messages if tag.encode() in m.content]
    assert len(relayed) == 3
    for message in relayed:
        assert message.recipients == (target,)
        assert _subject(message.content) == f"carrier {tag}"
        # No line of the relayed content is a bare dot the next hop could take for the end of DATA.
        assert b"\n.\n" not in message.content.replace(b"\r\n", b"\n")
