"""End to end: SMTP submission. Mailboxes log in with their address, delivery boxes with their name (SMTP
only), through Dovecot's authentication, never before TLS; each may send only as the envelope senders it
owns (`postwerk.domain.submission`), and mail leaves through the queue (to the relay host, the test's sink)
or lands in a hosted mailbox. The MX never offers AUTH and never relays. Refusals carry the documented
codes: 530 5.7.0 without TLS or login, 535 5.7.8 for a failed login, 553 5.7.1 for a foreign sender,
550 5.7.1 when sending is disabled."""

from __future__ import annotations

import itertools
import smtplib
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from postwerk.domain.addresses import parse_address
from postwerk.mailstack.layout import DISABLED_DOMAIN, LOOP_DOMAIN, MAILBOX_DOMAIN
from postwerk.service import projects as project_service
from postwerk.settings import split_host_port
from postwerk.store import repository
from tests.mail.conftest import (
    NETWORK_TIMEOUT,
    Hosted,
    Stack,
    imap_login,
    plain_credentials,
    wait_for_messages,
)
from tests.mail.messages import text_message

PASSWORD = "submission secret 1"
BOX_PASSWORD = "delivery box secret 1"
EXTERNAL = "customer@elsewhere.example"
# Dovecot slows down every login from an address that failed recently (2 s, doubling up to 15 s): refused
# logins come from loopback addresses of their own, so no other test waits for them.
_SOURCES = (f"127.0.{n // 250 + 120}.{n % 250 + 2}" for n in itertools.count())


def _tag() -> str:
    return uuid.uuid4().hex


def _with_tag(tag: str) -> object:
    return lambda message: tag.encode() in message.content


def _connect(stack: Stack, *, implicit_tls: bool = False, source: str | None = None) -> smtplib.SMTP:
    """A client of the submission port (STARTTLS, done here) or of the submissions port (implicit TLS)."""
    bind = (source, 0) if source else None
    if implicit_tls:
        host, port = split_host_port(stack.settings.submissions)
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host,
            port,
            local_hostname="client.postwerk.test",
            timeout=NETWORK_TIMEOUT,
            context=stack.tls,
            source_address=bind,
        )
        client.ehlo()
        return client
    host, port = split_host_port(stack.settings.submission)
    client = smtplib.SMTP(
        host, port, local_hostname="client.postwerk.test", timeout=NETWORK_TIMEOUT, source_address=bind
    )
    client.ehlo()
    client.starttls(context=stack.tls)
    client.ehlo()
    return client


def _auth(client: smtplib.SMTP, login: str, password: str) -> tuple[int, bytes]:
    """AUTH PLAIN with a UTF-8 login (smtplib's own login() encodes ASCII only)."""
    return client.docmd("AUTH", "PLAIN " + plain_credentials(login, password))


def _logged_in(
    stack: Stack, login: str, password: str, *, implicit_tls: bool = False, source: str | None = None
) -> smtplib.SMTP:
    client = _connect(stack, implicit_tls=implicit_tls, source=source)
    code, reply = _auth(client, login, password)
    assert code == 235, f"{login}: {code} {reply!r}\n{stack.log_tail()}"
    return client


def _refusal(client: smtplib.SMTP, sender: str, recipient: str) -> tuple[int, str]:
    """The first refusal of MAIL or RCPT (or (250, "") when both pass); the transaction is reset."""
    options = ["SMTPUTF8"] if not (sender + recipient).isascii() else []
    try:
        code, reply = client.mail(sender, options)
        if code == 250:
            code, reply = client.rcpt(recipient)
        return (250, "") if code == 250 else (code, reply.decode(errors="replace"))
    finally:
        client.rset()


def _assert_refused(client: smtplib.SMTP, sender: str, recipient: str, code: int, enhanced: str) -> str:
    got, reply = _refusal(client, sender, recipient)
    assert (got, reply.split(" ", 1)[0]) == (code, enhanced), (sender, recipient, got, reply)
    return reply


def _create_delivery_box(hosted: Hosted, password: str = BOX_PASSWORD) -> tuple[str, str]:
    response = hosted.api.post(
        f"/v2/projects/{hosted.project_id}/delivery-boxes",
        json={"description": "shop web application", "password": password},
    )
    assert response.status_code == 201, response.text
    box_id = str(response.json()["id"])
    response = hosted.api.get(f"/v2/delivery-boxes/{box_id}")
    assert response.status_code == 200, response.text
    return box_id, str(response.json()["name"])


@pytest.fixture
def other_domain(stack: Stack) -> str:
    """A domain of another project."""
    project_id, short_id = project_service.create_project(stack.context, "another customer")
    domain = f"other-{short_id.removeprefix('p-')}.example.org"
    project_service.add_domain(stack.context, domain, project_id)
    return domain


# --- TLS and AUTH ----------------------------------------------------------------------------------------


def test_no_auth_before_starttls_on_the_submission_port(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"early@{hosted.domain}", PASSWORD)
    host, port = split_host_port(stack.settings.submission)
    # From another address than the server's own: Dovecot counts a client on its own address as secure.
    with smtplib.SMTP(host, port, timeout=NETWORK_TIMEOUT, source_address=("127.0.0.2", 0)) as client:
        client.ehlo("client.postwerk.test")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth"), client.esmtp_features
        code, reply = client.docmd("AUTH", "PLAIN " + plain_credentials(f"early@{hosted.domain}", PASSWORD))
        assert (code, reply.split()[0]) == (530, b"5.7.0"), reply
        code, reply = client.mail(f"early@{hosted.domain}")
        assert (code, reply.split()[0]) == (530, b"5.7.0"), reply  # "Must issue a STARTTLS command first"
        client.starttls(context=stack.tls)
        client.ehlo("client.postwerk.test")
        assert set(client.esmtp_features["auth"].upper().split()) == {"PLAIN", "LOGIN"}
        assert _auth(client, f"early@{hosted.domain}", PASSWORD)[0] == 235


def test_the_submissions_port_speaks_tls_from_the_first_byte(stack: Stack, hosted: Hosted) -> None:
    host, port = split_host_port(stack.settings.submissions)
    with socket.create_connection((host, port), timeout=2, source_address=("127.0.0.2", 0)) as plain:
        plain.settimeout(2)
        with pytest.raises(TimeoutError):
            plain.recv(100)  # no plain-text banner: the server waits for a TLS handshake
    hosted.create_mailbox(f"wrapped@{hosted.domain}", PASSWORD)
    client = _connect(stack, implicit_tls=True, source="127.0.0.2")
    try:
        assert set(client.esmtp_features["auth"].upper().split()) == {"PLAIN", "LOGIN"}
        client.login(f"wrapped@{hosted.domain}", PASSWORD)  # smtplib's own choice of mechanism
    finally:
        client.quit()


def test_a_client_that_did_not_log_in_cannot_submit(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"owned@{hosted.domain}", PASSWORD)
    with _connect(stack, source="127.0.0.2") as client:
        _assert_refused(client, f"owned@{hosted.domain}", EXTERNAL, 553, "5.7.1")  # "not logged in"
        _assert_refused(client, "stranger@elsewhere.example", EXTERNAL, 530, "5.7.0")
        _assert_refused(client, "stranger@elsewhere.example", f"owned@{hosted.domain}", 530, "5.7.0")


def test_the_mx_never_offers_auth_and_never_relays(stack: Stack, hosted: Hosted) -> None:
    address = f"mx-only@{hosted.domain}"
    hosted.create_mailbox(address, PASSWORD)
    host, port = split_host_port(stack.settings.smtp)
    for source in ("127.0.0.1", "127.0.0.2"):
        with smtplib.SMTP(host, port, timeout=NETWORK_TIMEOUT, source_address=(source, 0)) as client:
            client.ehlo("client.postwerk.test")
            assert not client.has_extn("auth")
            client.starttls(context=stack.tls)
            client.ehlo("client.postwerk.test")
            assert not client.has_extn("auth"), client.esmtp_features
            code, reply = client.docmd("AUTH", "PLAIN " + plain_credentials(address, PASSWORD))
            assert (code, reply.split()[0]) == (503, b"5.5.1"), reply  # "authentication not enabled"
            # Not even a hosted sender is relayed by the MX.
            _assert_refused(client, address, EXTERNAL, 554, "5.7.1")


# --- mailboxes -------------------------------------------------------------------------------------------


def test_a_mailbox_sends_to_a_hosted_mailbox_and_out_through_the_queue(stack: Stack, hosted: Hosted) -> None:
    sender = f"Sender@{hosted.domain}"
    reader = f"reader@{hosted.domain}"
    hosted.create_mailbox(sender, PASSWORD)
    hosted.create_mailbox(reader, "reader secret 1")
    tag = _tag()
    sent = text_message(sender, reader, f"local {tag}", "Hello, colleague.", message_id=f"{tag}@client")
    with _logged_in(stack, f"sender@{hosted.domain.upper()}", PASSWORD) as client:
        assert client.sendmail(sender, [reader, EXTERNAL], sent) == {}
    (stored,) = wait_for_messages(stack, reader, "reader secret 1", 1)
    assert stored.endswith(sent) and f"Return-Path: <{sender}>".encode() in stored
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    # A hosted sender is never SRS-rewritten.
    assert (relayed.sender, relayed.recipients) == (sender, (EXTERNAL,))

    # The same over implicit TLS, with LOGIN (smtplib prefers it to nothing else offered but PLAIN).
    tag = _tag()
    with _logged_in(stack, sender, PASSWORD, implicit_tls=True) as client:
        assert client.sendmail(sender, [EXTERNAL], text_message(sender, EXTERNAL, tag, "Again.")) == {}
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert relayed.sender == sender


def test_no_client_may_send_to_the_internal_addresses(stack: Stack, hosted: Hosted) -> None:
    """`<mailbox id>@mailbox.postwerk.invalid` and the error routes are Postwerk's own answers: mail sent to
    them directly would skip routing, the disabled switch and the quota check. Refused on every port."""
    sender = f"internal@{hosted.domain}"
    box_id = hosted.create_mailbox(sender, PASSWORD)
    internal = [f"{box_id}@{MAILBOX_DOMAIN}", f"{box_id}@{DISABLED_DOMAIN}", f"{box_id}@{LOOP_DOMAIN}"]
    with _logged_in(stack, sender, PASSWORD) as client:
        assert client.mail(sender)[0] == 250
        for recipient in internal:
            code, reply = client.rcpt(recipient)
            assert (code, reply.split()[0]) == (554, b"5.7.1"), (recipient, reply)
    with stack.smtp() as client:
        assert client.mail("someone@outside.example")[0] == 250
        for recipient in internal:
            code, reply = client.rcpt(recipient)
            assert (code, reply.split()[0]) == (554, b"5.7.1"), (recipient, reply)
    # Nor on the SRS pass's listener, which takes any loopback client without a login.
    host, port = split_host_port(stack.settings.reinject)
    with smtplib.SMTP(host, port, local_hostname="client.postwerk.test", timeout=30) as client:
        client.ehlo()
        assert client.mail("someone@outside.example")[0] == 250
        for recipient in [*internal, f"../../escape@{MAILBOX_DOMAIN}", f"{box_id.upper()}@{MAILBOX_DOMAIN}"]:
            code, reply = client.rcpt(recipient)
            assert (code, reply.split()[0]) == (554, b"5.7.1"), (recipient, reply)


def test_an_internationalised_mailbox_logs_in_with_either_domain_form_and_sends_smtputf8(
    stack: Stack, hosted: Hosted
) -> None:
    address = f"Ärger@{hosted.idn_domain}"
    hosted.create_mailbox(address, PASSWORD)
    ascii_domain = parse_address(address).domain.ascii
    for login in (f"ärger@{hosted.idn_domain}", f"ÄRGER@{ascii_domain}"):
        tag = _tag()
        message = text_message(address, "Empfänger@elsewhere.example", f"utf8 {tag}", "Grüße.")
        with _logged_in(stack, login, PASSWORD) as client:
            assert client.has_extn("smtputf8")
            refused = client.sendmail(
                f"ärger@{hosted.idn_domain}", ["Empfänger@elsewhere.example"], message, ["SMTPUTF8"]
            )
            assert refused == {}
        (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
        assert relayed.sender == f"ärger@{hosted.idn_domain}"
        assert relayed.recipients == ("Empfänger@elsewhere.example",)
    # The A-label spelling of the envelope sender is the same address.
    with _logged_in(stack, login, PASSWORD) as client:
        assert _refusal(client, f"ärger@{ascii_domain}", EXTERNAL) == (250, "")


def test_a_mailbox_sends_only_as_itself_and_the_addresses_that_forward_to_it(
    stack: Stack, hosted: Hosted, other_domain: str
) -> None:
    me = f"me@{hosted.domain}"
    hosted.create_mailbox(me, PASSWORD)
    hosted.create_mailbox(f"colleague@{hosted.domain}", PASSWORD)
    hosted.create_address({"address": f"sales@{hosted.domain}", "forwardAddresses": [me]})
    hosted.create_address(
        {"address": f"others@{hosted.domain}", "forwardAddresses": [f"colleague@{hosted.domain}"]}
    )
    with _logged_in(stack, me, PASSWORD) as client:
        for sender in (me, f"ME@{hosted.domain}", f"me+tag@{hosted.domain}", f"sales@{hosted.domain}", ""):
            assert _refusal(client, sender, EXTERNAL) == (250, ""), sender
        for sender in (
            f"colleague@{hosted.domain}",  # another mailbox
            f"others@{hosted.domain}",  # a forwarding address that is not for me
            f"nobody@{hosted.domain}",  # no such address
            f"me@{other_domain}",  # another project's domain
            "me@elsewhere.example",  # not hosted at all
        ):
            reply = _assert_refused(client, sender, EXTERNAL, 553, "5.7.1")
            assert "not owned" in reply, reply
        # Refused for hosted recipients too: the sender check comes first.
        _assert_refused(client, f"colleague@{hosted.domain}", me, 553, "5.7.1")
    # The header From: is the submission milter's (to come); the envelope is checked here.


def test_a_mailbox_whose_sending_is_disabled_still_receives_and_reads(stack: Stack, hosted: Hosted) -> None:
    address = f"muted@{hosted.domain}"
    mailbox_id = hosted.create_mailbox(address, PASSWORD)
    with stack.context.db.write() as connection:
        repository.update_address(connection, mailbox_id, {"sending_enabled": False})
    response = hosted.api.get(f"/v2/mail-addresses/{mailbox_id}")
    assert response.json()["mailbox"]["sendingEnabled"] is False
    with _logged_in(stack, address, PASSWORD) as client:  # the login itself is fine
        reply = _assert_refused(client, address, EXTERNAL, 550, "5.7.1")
        assert "sending is disabled" in reply, reply
        _assert_refused(client, address, address, 550, "5.7.1")
    tag = _tag()
    with stack.smtp() as client:
        assert (
            client.sendmail("friend@elsewhere.example", [address], text_message("f@x", address, tag, "Hi"))
            == {}
        )
    assert any(tag.encode() in message for message in wait_for_messages(stack, address, PASSWORD, 1))
    with stack.context.db.write() as connection:
        repository.update_address(connection, mailbox_id, {"sending_enabled": True})
    with _logged_in(stack, address, PASSWORD) as client:
        assert _refusal(client, address, EXTERNAL) == (250, "")


# --- delivery boxes ---------------------------------------------------------------------------------------


def test_a_delivery_box_sends_as_any_address_of_its_project(
    stack: Stack, hosted: Hosted, other_domain: str
) -> None:
    hosted.create_mailbox(f"info@{hosted.domain}", PASSWORD)
    reader = f"orders@{hosted.domain}"
    hosted.create_mailbox(reader, PASSWORD)
    _, name = _create_delivery_box(hosted)
    with _logged_in(stack, name, BOX_PASSWORD) as client:
        for sender in (
            f"noreply@{hosted.domain}",  # no such address
            f"info@{hosted.domain}",  # a mailbox of the project
            f"shop@{hosted.idn_domain}",
            f"shop@{parse_address(f'x@{hosted.idn_domain}').domain.ascii}",
        ):
            assert _refusal(client, sender, EXTERNAL) == (250, ""), sender
        for sender in (f"noreply@{other_domain}", "noreply@elsewhere.example"):
            reply = _assert_refused(client, sender, EXTERNAL, 553, "5.7.1")
            assert "not owned" in reply, reply
        tag = _tag()
        sent = text_message(f"noreply@{hosted.domain}", reader, f"order {tag}", "Order received.")
        assert client.sendmail(f"noreply@{hosted.domain}", [reader], sent) == {}
    (stored,) = wait_for_messages(stack, reader, PASSWORD, 1)
    assert stored.endswith(sent)


def test_a_delivery_box_cannot_read_mail(stack: Stack, hosted: Hosted) -> None:
    _, name = _create_delivery_box(hosted)
    import imaplib
    import poplib

    with pytest.raises(imaplib.IMAP4.error):
        imap_login(stack, name, BOX_PASSWORD)
    host, port = split_host_port(stack.settings.pop3s)
    client = poplib.POP3_SSL(host, port, context=stack.tls, timeout=NETWORK_TIMEOUT)
    try:
        client.user(name)
        with pytest.raises(poplib.error_proto):
            client.pass_(BOX_PASSWORD)
    finally:
        client.close()


def test_a_delivery_box_password_change_counts_at_the_next_login(stack: Stack, hosted: Hosted) -> None:
    box_id, name = _create_delivery_box(hosted)
    _logged_in(stack, name, BOX_PASSWORD).quit()
    response = hosted.api.patch(
        f"/v2/delivery-boxes/{box_id}/password", json={"password": "a new box secret"}
    )
    assert response.status_code == 204, response.text
    with _connect(stack, source=next(_SOURCES)) as client:
        code, reply = _auth(client, name, BOX_PASSWORD)
        assert (code, reply.split()[0]) == (535, b"5.7.8"), reply
    _logged_in(stack, name, "a new box secret").quit()


def test_a_delivery_box_honours_its_switches(stack: Stack, hosted: Hosted) -> None:
    box_id, name = _create_delivery_box(hosted)
    sender = f"noreply@{hosted.domain}"
    with stack.context.db.write() as connection:
        repository.update_delivery_box(connection, box_id, {"sending_enabled": False})
    assert hosted.api.get(f"/v2/delivery-boxes/{box_id}").json()["sendingEnabled"] is False
    with _logged_in(stack, name, BOX_PASSWORD) as client:
        reply = _assert_refused(client, sender, EXTERNAL, 550, "5.7.1")
        assert "sending is disabled" in reply, reply
    with stack.context.db.write() as connection:
        repository.update_delivery_box(
            connection, box_id, {"sending_enabled": True, "authentication_enabled": False}
        )
    with _connect(stack, source=next(_SOURCES)) as client:
        code, reply = _auth(client, name, BOX_PASSWORD)
        assert (code, reply.split()[0]) == (535, b"5.7.8"), reply
    with stack.context.db.write() as connection:
        repository.update_delivery_box(connection, box_id, {"authentication_enabled": True})
    with _logged_in(stack, name, BOX_PASSWORD) as client:
        assert _refusal(client, sender, EXTERNAL) == (250, "")


# A "web application": what a shop's code does to send an order confirmation (Python's standard library).
WEB_APPLICATION = textwrap.dedent(
    """\
    import smtplib, ssl, sys
    from email.message import EmailMessage

    host, port, cafile, login, password, sender, recipient, tag = sys.argv[1:]
    message = EmailMessage()
    message["From"] = f"Shop <{sender}>"
    message["To"] = recipient
    message["Subject"] = f"Your order {tag}"
    message.set_content("Thank you for your order.")
    tls = ssl.create_default_context(cafile=cafile)
    tls.check_hostname = False
    with smtplib.SMTP(host, int(port), local_hostname="shop.postwerk.test", timeout=10) as smtp:
        smtp.starttls(context=tls)
        smtp.login(login, password)
        smtp.send_message(message)
    """
)


def test_a_web_application_sends_through_a_delivery_box(stack: Stack, hosted: Hosted, tmp_path: Path) -> None:
    _, name = _create_delivery_box(hosted)
    sender = f"shop@{hosted.domain}"
    script = tmp_path / "send_order.py"
    script.write_text(WEB_APPLICATION)
    host, port = split_host_port(stack.settings.submission)
    tag = _tag()
    arguments = [host, str(port), str(stack.mail.layout.tls_cert), name, BOX_PASSWORD, sender, EXTERNAL, tag]
    subprocess.run(
        [sys.executable, str(script), *arguments],
        check=True,
        timeout=60,
    )
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert (relayed.sender, relayed.recipients) == (sender, (EXTERNAL,))
    # Missing headers of a logged-in client's mail are added (Message-ID, Date).
    headers = relayed.content.split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\nmessage-id: <" in headers and b"\r\ndate: " in headers, headers


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "implicit-tls"])
def test_swaks_sends_through_a_delivery_box(stack: Stack, hosted: Hosted, implicit_tls: bool) -> None:
    _, name = _create_delivery_box(hosted)
    sender = f"noreply@{hosted.domain}"
    host, port = split_host_port(stack.settings.submissions if implicit_tls else stack.settings.submission)

    def swaks(
        login: str, password: str, mail_from: str, tag: str, source: str = "127.0.0.1"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *("swaks", "--server", host, "--port", str(port), "--local-interface", source),
                "--tls-on-connect" if implicit_tls else "--tls",
                *("--auth", "PLAIN", "--auth-user", login, "--auth-password", password),
                *("--from", mail_from, "--to", EXTERNAL, "--helo", "app.postwerk.test"),
                *("--header", f"Subject: swaks {tag}", "--body", f"Sent by swaks {tag}."),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    tag = _tag()
    result = swaks(name, BOX_PASSWORD, sender, tag)
    assert result.returncode == 0, result.stdout + result.stderr
    (relayed,) = stack.sink.wait_for(_with_tag(tag), log=stack.log_tail)
    assert (relayed.sender, relayed.recipients) == (sender, (EXTERNAL,))

    refused = swaks(name, BOX_PASSWORD, "noreply@elsewhere.example", _tag())
    # swaks marks a refusal `<**` (`<~*` inside TLS).
    assert refused.returncode != 0 and "* 553 5.7.1 " in refused.stdout, refused.stdout
    refused = swaks(name, "not the password", sender, _tag(), next(_SOURCES))
    assert refused.returncode != 0 and "* 535 5.7.8 " in refused.stdout, refused.stdout


# --- failed logins --------------------------------------------------------------------------------------


def _timed_auth(stack: Stack, login: str, password: str, source: str) -> tuple[int, float]:
    with _connect(stack, source=source) as client:
        started = time.monotonic()
        code, _ = _auth(client, login, password)
        return code, time.monotonic() - started


def test_failed_logins_are_slowed_down_per_client_address(stack: Stack, hosted: Hosted) -> None:
    address = f"target@{hosted.domain}"
    hosted.create_mailbox(address, PASSWORD)
    attacker, bystander, owner = next(_SOURCES), next(_SOURCES), next(_SOURCES)
    timings = []
    for guess in ("first guess", "second guess"):
        code, seconds = _timed_auth(stack, address, guess, attacker)
        assert code == 535
        timings.append(seconds)
    # Every failure waits (auth_failure_delay, 2 s), and each one more from the same client address waits
    # longer (Dovecot's auth penalty: 2, 4, 8 s, up to 15 s, before the password is even looked at).
    assert timings[0] >= 1.5 and timings[1] > timings[0] + 2, timings
    # Other client addresses are not slowed down, the account's owner among them, and nothing is locked.
    code, seconds = _timed_auth(stack, address, PASSWORD, owner)
    assert code == 235 and seconds < 1.5, seconds
    code, seconds = _timed_auth(stack, address, "wrong again", bystander)
    assert code == 535 and seconds < timings[1], seconds
    code, _ = _timed_auth(stack, address, PASSWORD, attacker)  # slowed down, not locked out
    assert code == 235
    # Each failure is logged with the client's address.
    logs = stack.mail.layout.logs
    assert logs is not None
    postfix_log = (logs / "postfix.log").read_text(errors="replace")
    assert f"[{attacker}]: SASL PLAIN authentication failed" in postfix_log
