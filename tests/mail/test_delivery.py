"""End to end: an address made through the API, mail over SMTP to the MX, read back over IMAP."""

from __future__ import annotations

import imaplib
import os
import signal
import subprocess
import time
import unicodedata

import pytest

from postwerk.domain.addresses import parse_domain
from postwerk.service import projects as project_service
from postwerk.settings import split_host_port
from tests.mail.conftest import (
    Hosted,
    SourceBoundIMAP4,
    Stack,
    imap_login,
    split_trace,
    wait_for_messages,
)
from tests.mail.messages import text_message

PASSWORD = "correct horse battery staple"


def test_a_mailbox_made_through_the_api_receives_mail_at_once(stack: Stack, hosted: Hosted) -> None:
    address = f"Info@{hosted.domain}"
    mailbox_id = hosted.create_mailbox(address, PASSWORD)
    sent = text_message(
        "sender@outside.example", address, "Hello", "A first line.\r\n.dot-stuffed line\r\nEnd."
    )
    with stack.smtp() as client:
        refused = client.sendmail("sender@outside.example", [f"info@{hosted.domain.upper()}"], sent)
    assert refused == {}
    (stored,) = wait_for_messages(stack, f"info@{hosted.domain}", PASSWORD, 1)
    assert "received" in split_trace(stored, sent)
    # The storage is named by the mailbox's id, never by the address.
    assert (stack.mail.layout.boxes / mailbox_id / "Maildir").is_dir()
    assert not any(hosted.domain in path.name for path in stack.mail.layout.boxes.iterdir())


def test_utf8_addresses_receive_and_log_in_with_either_domain_form(stack: Stack, hosted: Hosted) -> None:
    address = f"пошта@{hosted.idn_domain}"
    hosted.create_mailbox(address, PASSWORD)
    ascii_domain = hosted.idn_domain.encode("idna").decode()
    sender = "відправник@пример.укр"
    sent = text_message(f"Відправник <{sender}>", address, "Привіт, світ", "Текст листа.")
    with stack.smtp() as client:
        refused = client.sendmail(
            sender, [address, f"пошта@{ascii_domain}"], sent, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    assert refused == {}
    # Over IMAPS with the U-label login, then over STARTTLS with the A-label one.
    stored = wait_for_messages(stack, address, PASSWORD, 2, implicit_tls=True)
    assert all(split_trace(message, sent) for message in stored)
    assert stored == wait_for_messages(stack, f"пошта@{ascii_domain.upper()}", PASSWORD, 2)
    assert stored[0].startswith(f"Return-Path: <{sender}>".encode())


def test_a_domain_with_a_sharp_s_gets_its_mail_and_never_its_twins(stack: Stack, hosted: Hosted) -> None:
    """Postfix folds lookup keys in full (ß is ss), so `straße.example` written in UTF-8 is, to its maps,
    the other domain `strasse.example`. The hosted ß domain gets mail by its A-label, mail for the twin
    leaves through the queue instead of landing here, and the UTF-8 spelling, which Postfix cannot tell
    from the twin, is refused (migration 0015, README "Envelope recipients")."""
    suffix = hosted.domain.split(".")[0]
    sharp = f"straße-{suffix}.example"
    # (Not Python's "idna" codec: IDNA 2003 turns ß into ss.)
    a_label, twin = parse_domain(sharp).ascii, f"strasse-{suffix}.example"
    assert a_label.startswith("xn--")
    project_service.add_domain(stack.context, sharp, hosted.project_id)
    address = f"Groß@{sharp}"
    hosted.create_mailbox(address, PASSWORD)
    forwarder = f"zwilling@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": [f"groß@{twin}"]})
    sent = text_message("Jürgen <jürgen@außen.example>", address, "Grüße", "Straße und Maß.")
    options = ["SMTPUTF8", "BODY=8BITMIME"]
    with stack.smtp() as client:
        assert client.sendmail("jürgen@außen.example", [f"groß@{a_label}"], sent, options) == {}
        assert client.sendmail("jürgen@außen.example", [forwarder], sent, options) == {}
        assert client.mail("jürgen@außen.example", options)[0] == 250
        code, reply = client.rcpt(address)
        assert (code, reply.split()[0]) == (554, b"5.7.1"), reply
        client.rset()
    (stored,) = wait_for_messages(stack, f"groß@{a_label}", PASSWORD, 1)
    assert split_trace(stored, sent)
    (relayed,) = stack.sink.wait_for(lambda message: twin in " ".join(message.recipients), log=stack.log_tail)
    assert relayed.recipients == (f"groß@{twin}",)
    time.sleep(1)  # a wrong local delivery of the forward would have landed by now
    assert len(wait_for_messages(stack, f"groß@{a_label}", PASSWORD, 1)) == 1


def test_new_mailboxes_have_the_special_use_folders(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"folders@{hosted.domain}", PASSWORD)
    client = imap_login(stack, f"FOLDERS@{hosted.domain}", PASSWORD)
    try:
        status, listing = client.list()
    finally:
        client.logout()
    assert status == "OK"
    flags = b" ".join(line for line in listing if isinstance(line, bytes))
    for flag in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk"):
        assert flag in flags


def test_wrong_password_and_unknown_login_are_refused(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"guarded@{hosted.domain}", PASSWORD)
    for login, password in (
        (f"guarded@{hosted.domain}", "not the password"),
        (f"nobody@{hosted.domain}", PASSWORD),
    ):
        with pytest.raises(imaplib.IMAP4.error):
            imap_login(stack, login, password)


def test_unknown_recipient_in_a_hosted_domain_is_refused_at_rcpt(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"known@{hosted.domain}", PASSWORD)
    with stack.smtp() as client:
        assert client.mail("sender@outside.example")[0] == 250
        code, reply = client.rcpt(f"unknown@{hosted.domain}")
        assert (code, reply.split()[0]) == (550, b"5.1.1"), reply
        assert client.rcpt(f"known@{hosted.domain}")[0] == 250


def test_unknown_recipients_are_refused_by_postfix_whatever_the_policy_service_answers(stack: Stack) -> None:
    """The policy service answers OK only for hosted recipients it found; everything else (not found, an
    error, the service unreachable: Postfix's default_action) is DUNNO, and Postfix's own check of unknown
    recipients must come after it, with nothing in between that could permit them."""
    postconf = subprocess.run(
        ["postconf", "-c", str(stack.mail.layout.postfix_config), "-h",
         "smtpd_recipient_restrictions", "smtpd_reject_unlisted_recipient"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    restrictions, implicit_check = postconf.stdout.splitlines()
    policy, rest = restrictions.split("check_policy_service", 1)
    assert "default_action=DUNNO }" in rest
    after_policy = [step.strip() for step in rest.split("}", 1)[1].split(",") if step.strip()]
    assert after_policy == ["reject_unlisted_recipient", "permit"]
    assert "permit" not in policy and "reject_unlisted_recipient" not in policy
    # "yes" would query the recipient maps again after the policy service's OK.
    assert implicit_check == "no"


@pytest.mark.parametrize("recipient", ["someone@gmail.example", "x@mailbox.postwerk.invalid"])
def test_the_mx_is_no_relay_even_from_loopback(stack: Stack, recipient: str) -> None:
    with stack.smtp() as client:
        assert client.mail("sender@outside.example")[0] == 250
        code, reply = client.rcpt(recipient)
    assert (code, reply.split()[0]) == (554, b"5.7.1"), reply


def test_catch_all_takes_unknown_local_parts_but_never_an_existing_address(
    stack: Stack, hosted: Hosted
) -> None:
    hosted.create_mailbox(f"existing@{hosted.domain}", PASSWORD)
    hosted.create_address(
        {
            "address": f"catchall@{hosted.domain}",
            "isCatchAll": True,
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    to_existing = text_message("a@outside.example", f"existing@{hosted.domain}", "mine", "for existing")
    to_unknown = text_message("a@outside.example", f"whoever@{hosted.domain}", "anyone", "for the catch-all")
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [f"existing@{hosted.domain}"], to_existing) == {}
        assert client.sendmail("a@outside.example", [f"whoever+tag@{hosted.domain}"], to_unknown) == {}
    (catch_all,) = wait_for_messages(stack, f"catchall@{hosted.domain}", PASSWORD, 1)
    split_trace(catch_all, to_unknown)
    (existing,) = wait_for_messages(stack, f"existing@{hosted.domain}", PASSWORD, 1)
    split_trace(existing, to_existing)


def test_forwarding_reaches_hosted_targets_and_a_mailbox_keeps_its_copy(stack: Stack, hosted: Hosted) -> None:
    first, second = f"first@{hosted.domain}", f"second@{hosted.idn_domain}"
    hosted.create_mailbox(second, PASSWORD)
    hosted.create_address(
        {
            "address": first,
            "forwardAddresses": [second],
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    hosted.create_address({"address": f"team@{hosted.domain}", "forwardAddresses": [first]})
    sent = text_message("a@outside.example", f"team@{hosted.domain}", "to the team", "Hello team.")
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [f"team@{hosted.domain}"], sent) == {}
    for login in (first, second):
        (stored,) = wait_for_messages(stack, login, PASSWORD, 1)
        split_trace(stored, sent)


def test_mailboxes_that_forward_a_copy_to_each_other_each_get_it_once(stack: Stack, hosted: Hosted) -> None:
    first, second = f"mutual-a@{hosted.domain}", f"mutual-b@{hosted.idn_domain}"
    for address, target in ((first, second), (second, first)):
        hosted.create_address(
            {
                "address": address,
                "forwardAddresses": [target],
                "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
            }
        )
    to_first = text_message("a@outside.example", first, "to a", "For a, copied to b.")
    to_second = text_message("a@outside.example", second, "to b", "For b, copied to a.")
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [first], to_first) == {}
        assert client.sendmail("a@outside.example", [second], to_second, mail_options=["SMTPUTF8"]) == {}
    for login in (first, second):
        stored = wait_for_messages(stack, login, PASSWORD, 2)
        time.sleep(1)  # a third copy would show up now
        assert len(wait_for_messages(stack, login, PASSWORD, 2)) == 2
        assert sorted(message.endswith(to_first) for message in stored) == [False, True], login


def _nfd(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def test_a_decomposed_recipient_reaches_the_address_it_spells_never_the_catch_all(
    stack: Stack, hosted: Hosted
) -> None:
    umlaut, cyrillic = f"ärger@{hosted.domain}", f"йорг@{hosted.idn_domain}"  # й: и and a combining breve
    books = f"bücher-{hosted.domain}"
    project_service.add_domain(stack.context, books, hosted.project_id)
    in_books = f"jörg@{books}"
    for address in (umlaut, cyrillic, in_books):
        hosted.create_mailbox(address, PASSWORD)
    catch_all = f"catchall@{hosted.domain}"
    hosted.create_address(
        {
            "address": catch_all,
            "isCatchAll": True,
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    sender = "відправник@пример.укр"
    utf8 = ["SMTPUTF8", "BODY=8BITMIME"]
    sent = {
        recipient: text_message(sender, recipient, f"to {recipient}", "Zerlegt geschrieben.")
        for recipient in (
            _nfd(f"ÄRGER@{hosted.domain}"),
            _nfd(f"ärger+tag@{hosted.domain}"),
            _nfd(cyrillic.upper()),
            _nfd(f"nöbody@{hosted.domain}"),  # no such address: the catch-all, as when composed
            _nfd(in_books),  # the domain decomposed too
        )
    }
    with stack.smtp() as client:
        for recipient, message in sent.items():
            assert client.sendmail(sender, [recipient], message, mail_options=utf8) == {}, recipient
        # Unknown in a domain without a catch-all: refused at RCPT, however it is written.
        assert client.mail(sender, utf8)[0] == 250
        for unknown in (_nfd(f"nöbody@{hosted.idn_domain}"), _nfd(f"nöbody@{books}")):
            code, reply = client.rcpt(unknown)
            assert (code, reply.split()[0]) == (550, b"5.1.1"), (unknown, reply)
    messages = list(sent.values())

    def which(login: str, count: int) -> list[int]:
        stored = wait_for_messages(stack, login, PASSWORD, count)
        return sorted(i for message in stored for i, m in enumerate(messages) if message.endswith(m))

    assert which(umlaut, 2) == [0, 1]
    assert which(cyrillic, 1) == [2]
    assert which(in_books, 1) == [4]
    time.sleep(1)  # a stray copy for the catch-all would show up now
    assert which(catch_all, 1) == [3]


def test_no_password_before_tls(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"careful@{hosted.domain}", PASSWORD)
    host, port = split_host_port(stack.settings.imap)
    # From 127.0.0.2: Dovecot treats a client on its own address (127.0.0.1) as secure.
    client = SourceBoundIMAP4(host, port, "127.0.0.2")
    try:
        assert "LOGINDISABLED" in client.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            client.authenticate("PLAIN", lambda _: f"\0careful@{hosted.domain}\0{PASSWORD}".encode())
    finally:
        client.shutdown()


def test_smtp_refuses_a_message_over_the_size_limit_up_front(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"big@{hosted.domain}", PASSWORD)
    with stack.smtp() as client:
        assert client.has_extn("size")
        assert int(client.esmtp_features["size"]) == stack.settings.message_size_limit
        code, _ = client.mail("a@outside.example", [f"SIZE={stack.settings.message_size_limit + 1}"])
    assert code == 552


def test_a_crashed_server_is_restarted(stack: Stack, hosted: Hosted) -> None:
    supervisor = stack.mail.supervisor
    assert supervisor is not None
    pid = supervisor.pid("dovecot")
    assert pid is not None
    before = supervisor.restarts["dovecot"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while supervisor.restarts["dovecot"] == before or supervisor.pid("dovecot") in (None, pid):
        assert time.monotonic() < deadline, "dovecot was not restarted"
        time.sleep(0.1)
    stack.mail.wait_ready()
    hosted.create_mailbox(f"after-crash@{hosted.domain}", PASSWORD)
    imap_login(stack, f"after-crash@{hosted.domain}", PASSWORD).logout()
