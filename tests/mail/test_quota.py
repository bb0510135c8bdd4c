"""End to end: quotas refused at RCPT time (directly, through a forward, through the catch-all), and the
real usage in the API after a delivery and after an expunge."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from postwerk.mailstack.layout import DOVEADM
from postwerk.store import repository
from tests.mail.conftest import Hosted, Stack, imap_login, wait_for_messages
from tests.mail.messages import text_message

PASSWORD = "correct horse battery staple"
USAGE_TIMEOUT = 20.0  # Dovecot reports a delivery or an expunge at once
FULL = (552, b"5.2.2")


def _message(recipient: str, body: str, *, sender: str = "a@outside.example") -> bytes:
    return text_message(sender, recipient, "quota", body, message_id="quota-test@client.postwerk.test")


def _set_quota(stack: Stack, mailbox_id: str, quota_bytes: int) -> None:
    # The API's smallest quota is 200 MiB (mittwald's minimum); filling that would make the test slow, so the
    # provider's store gets a small one directly, through the repository like any write of an address.
    with stack.context.db.write() as connection:
        repository.update_address(connection, mailbox_id, {"quota_bytes": quota_bytes})


def _storage(hosted: Hosted, address_id: str) -> dict[str, Any]:
    response = hosted.api.get(f"/v2/mail-addresses/{address_id}")
    assert response.status_code == 200, response.text
    storage: dict[str, Any] = response.json()["mailbox"]["storageInBytes"]
    return storage


def _wait_for_usage(stack: Stack, hosted: Hosted, address_id: str, expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + USAGE_TIMEOUT
    while True:
        current: dict[str, Any] = _storage(hosted, address_id)["current"]
        if current["value"] == expected:
            return current
        assert time.monotonic() < deadline, (
            f"usage is {current['value']}, expected {expected}\n{stack.log_tail()}"
        )
        time.sleep(0.1)


def _sizes(stack: Stack, login: str) -> list[int]:
    """RFC822.SIZE of every message in every folder: what the mailbox really holds."""
    client = imap_login(stack, login, PASSWORD)
    try:
        sizes = []
        for folder in ("INBOX", "Sent", "Drafts", "Trash", "Junk"):
            status, exists = client.select(folder, readonly=True)
            assert status == "OK"
            if exists[0] == b"0":
                continue
            status, data = client.fetch("1:*", "(RFC822.SIZE)")
            assert status == "OK"
            for item in data:
                if isinstance(item, bytes) and b"RFC822.SIZE" in item:
                    sizes.append(int(item.split(b"RFC822.SIZE ")[1].split(b")")[0]))
        return sizes
    finally:
        client.logout()


def _rcpt(stack: Stack, recipient: str, *, utf8: bool = False) -> tuple[int, bytes]:
    with stack.smtp() as client:
        options = ["SMTPUTF8"] if utf8 else []
        assert client.mail("a@outside.example", options)[0] == 250
        code, reply = client.rcpt(recipient)
        return code, reply.split()[0] if reply else b""


def test_a_full_mailbox_refuses_mail_at_rcpt_directly_through_forwards_and_the_catch_all(
    stack: Stack, hosted: Hosted
) -> None:
    domain = hosted.domain
    full_id = hosted.create_address(
        {
            "address": f"full@{domain}",
            "isCatchAll": True,
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    hosted.create_address({"address": f"team@{domain}", "forwardAddresses": [f"full@{domain}"]})
    hosted.create_address({"address": f"relay@{domain}", "forwardAddresses": [f"team@{domain}"]})
    hosted.create_mailbox(f"free@{domain}", PASSWORD)
    _set_quota(stack, full_id, 1000)

    # Room left: a message announced to fit is accepted (smtplib announces SIZE); then the box is full.
    first = _message(f"full@{domain}", "x" * 700)
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [f"full@{domain}"], first) == {}
    wait_for_messages(stack, f"full@{domain}", PASSWORD, 1)
    (stored_size,) = _sizes(stack, f"full@{domain}")
    assert stored_size > 1000  # the trace headers the servers add push it over
    current = _wait_for_usage(stack, hosted, full_id, stored_size)
    assert current["updatedAt"] is not None

    for recipient in (
        f"full@{domain}",
        f"FULL+news@{domain}",  # subaddress
        f"team@{domain}",  # forwarding address
        f"relay@{domain}",  # a forward of a forward
        f"anyone@{domain}",  # the catch-all
    ):
        assert _rcpt(stack, recipient) == FULL, recipient

    # Other mailboxes are untouched, in the same transaction too.
    with stack.smtp() as client:
        assert client.mail("a@outside.example")[0] == 250
        assert (client.rcpt(f"team@{domain}")[0], client.rcpt(f"free@{domain}")[0]) == (552, 250)

    # More room: accepted again at once (the quota is read on every RCPT).
    _set_quota(stack, full_id, -1)
    assert _rcpt(stack, f"anyone@{domain}")[0] == 250


def test_an_announced_size_that_does_not_fit_is_refused(stack: Stack, hosted: Hosted) -> None:
    box_id = hosted.create_mailbox(f"small@{hosted.domain}", PASSWORD)
    _set_quota(stack, box_id, 5000)
    with stack.smtp() as client:
        assert client.mail("a@outside.example", ["SIZE=6000"])[0] == 250
        code, reply = client.rcpt(f"small@{hosted.domain}")
        assert (code, reply.split()[0]) == FULL
    with stack.smtp() as client:
        assert client.mail("a@outside.example", ["SIZE=4000"])[0] == 250
        assert client.rcpt(f"small@{hosted.domain}")[0] == 250


def test_an_unlimited_mailbox_keeps_receiving(stack: Stack, hosted: Hosted) -> None:
    address = f"unlimited@{hosted.domain}"
    box_id = hosted.create_address(
        {
            "address": address,
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    assert _storage(hosted, box_id)["limit"] == -1
    big = stack.settings.message_size_limit // 2
    with stack.smtp() as client:
        for index in range(3):
            assert client.sendmail("a@outside.example", [address], _message(address, f"n{index}")) == {}
        assert client.mail("a@outside.example", [f"SIZE={big}"])[0] == 250
        assert client.rcpt(address)[0] == 250
    wait_for_messages(stack, address, PASSWORD, 3)
    _wait_for_usage(stack, hosted, box_id, sum(_sizes(stack, address)))


def test_utf8_addresses_pass_the_quota_check(stack: Stack, hosted: Hosted) -> None:
    address = f"пошта@{hosted.idn_domain}"
    ascii_domain = hosted.idn_domain.encode("idna").decode()
    box_id = hosted.create_mailbox(address, PASSWORD)
    sender = "відправник@пример.укр"
    sent = _message(address, "Текст листа. " * 20, sender=sender)
    with stack.smtp() as client:
        refused = client.sendmail(sender, [address], sent, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert refused == {}
    wait_for_messages(stack, address, PASSWORD, 1)
    (stored_size,) = _sizes(stack, address)
    _wait_for_usage(stack, hosted, box_id, stored_size)
    assert _rcpt(stack, f"Пошта@{hosted.idn_domain}", utf8=True)[0] == 250
    _set_quota(stack, box_id, stored_size)  # now exactly full
    assert _rcpt(stack, address, utf8=True) == FULL
    assert _rcpt(stack, f"Пошта@{ascii_domain.upper()}", utf8=True) == FULL
    assert _rcpt(stack, f"пошта+новини@{hosted.idn_domain}", utf8=True) == FULL
    # Unknown UTF-8 recipients still get Postfix's own answer, and the policy service lives on.
    assert _rcpt(stack, f"невідомий@{hosted.idn_domain}", utf8=True)[0] == 550
    hosted.create_mailbox(f"ще@{hosted.idn_domain}", PASSWORD)
    assert _rcpt(stack, f"ще@{hosted.idn_domain}", utf8=True)[0] == 250


def test_usage_follows_an_imap_expunge(stack: Stack, hosted: Hosted) -> None:
    address = f"reader@{hosted.domain}"
    box_id = hosted.create_mailbox(address, PASSWORD)
    with stack.smtp() as client:
        for body in ("first " * 100, "second " * 300):
            assert client.sendmail("a@outside.example", [address], _message(address, body)) == {}
    wait_for_messages(stack, address, PASSWORD, 2)
    sizes = _sizes(stack, address)
    before = _wait_for_usage(stack, hosted, box_id, sum(sizes))

    client = imap_login(stack, address, PASSWORD)
    try:
        assert client.select("INBOX")[0] == "OK"
        assert client.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
        assert client.expunge()[0] == "OK"
        # Kept open on purpose: the expunge is reported while a client keeps the mailbox open.
        after = _wait_for_usage(stack, hosted, box_id, sum(_sizes(stack, address)))
    finally:
        client.logout()
    assert after["value"] < before["value"]
    assert after["updatedAt"] > before["updatedAt"]


def test_a_recount_by_doveadm_corrects_the_stored_usage(stack: Stack, hosted: Hosted) -> None:
    """Usage is kept by increments; whatever made the store drift (a write lost with its service), the
    provider's `doveadm quota recalc` counts the mailbox and the store takes the total."""
    address = f"recount@{hosted.domain}"
    box_id = hosted.create_mailbox(address, PASSWORD)
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [address], _message(address, "count me " * 50)) == {}
    wait_for_messages(stack, address, PASSWORD, 1)
    total = sum(_sizes(stack, address))
    _wait_for_usage(stack, hosted, box_id, total)
    # One mailbox, then every one (`-A` lists them by the SQL userdb's iterate_query).
    for which in (["-u", box_id], ["-A"]):
        with stack.context.db.write() as connection:
            repository.update_usage(connection, {box_id: (1, 0)}, datetime.now(UTC))
        assert _storage(hosted, box_id)["current"]["value"] == 1
        recount = subprocess.run(
            [str(DOVEADM), "-c", str(stack.mail.layout.dovecot_conf), "quota", "recalc", *which],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert recount.returncode == 0, recount.stderr
        _wait_for_usage(stack, hosted, box_id, total)
