"""End to end: IMAP logins are found by the domain's rule for addresses (`parse_address(...).lookup_key`),
through Postwerk's login dictionary: capitals beyond ASCII and decomposed (NFD) spellings log in too, and
every change counts at the very next login (nothing is cached)."""

from __future__ import annotations

import imaplib
import itertools
import socket
import unicodedata

import pytest

from postwerk.domain.addresses import parse_address
from postwerk.settings import split_host_port
from tests.mail.conftest import NETWORK_TIMEOUT, Hosted, Stack, imap_login

PASSWORD = "correct horse battery staple"
# Dovecot delays every login from an address that failed recently (2 s, doubling up to 15 s): each refused
# login comes from a loopback address of its own, so no other login (of this test or another) waits.
_SOURCES = (f"127.0.{n // 250 + 50}.{n % 250 + 2}" for n in itertools.count())


class _SourceBoundIMAP4SSL(imaplib.IMAP4_SSL):
    def __init__(self, stack: Stack, source: str) -> None:
        self._source = source
        host, port = split_host_port(stack.settings.imaps)
        super().__init__(host, port, ssl_context=stack.tls, timeout=NETWORK_TIMEOUT)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        plain = socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))
        return self.ssl_context.wrap_socket(plain, server_hostname=self.host)


def _refused(stack: Stack, login: str, password: str = PASSWORD) -> bool:
    client = _SourceBoundIMAP4SSL(stack, next(_SOURCES))
    credentials = b"\0" + login.encode() + b"\0" + password.encode()
    try:
        client.authenticate("PLAIN", lambda _challenge: credentials)
    except imaplib.IMAP4.error:
        return True
    finally:
        client.shutdown()
    return False


def _logs_in(stack: Stack, login: str, password: str = PASSWORD) -> bool:
    client = imap_login(stack, login, password)
    try:
        status, _ = client.select("INBOX", readonly=True)
        assert status == "OK"
    finally:
        client.logout()
    return True


def test_logins_with_capitals_beyond_ascii_and_decomposed_letters(stack: Stack, hosted: Hosted) -> None:
    hosted.create_mailbox(f"Ärger@{hosted.domain}", PASSWORD)
    hosted.create_mailbox(f"Пошта@{hosted.idn_domain}", PASSWORD)
    ascii_idn = parse_address(f"x@{hosted.idn_domain}").domain.ascii
    logins = [
        f"ÄRGER@{hosted.domain}",
        f"ärger@{hosted.domain.upper()}",
        unicodedata.normalize("NFD", f"ärger@{hosted.domain}"),
        unicodedata.normalize("NFD", f"ÄRGER@{hosted.domain}"),
        f"ПОШТА@{hosted.idn_domain}",
        f"ПОШТА@{hosted.idn_domain.upper()}",
        f"пошта@{ascii_idn.upper()}",
        unicodedata.normalize("NFD", f"Пошта@{hosted.idn_domain}"),
    ]
    for login in logins:
        assert parse_address(login).lookup_key in {
            f"ärger@{hosted.domain}",
            f"пошта@{ascii_idn}",
        }, login  # the domain finds the address...
        assert _logs_in(stack, login), f"{login!r} was refused\n{stack.log_tail()}"  # ...and so does Dovecot
    assert _refused(stack, f"ÄRGER@{hosted.domain}", "not the password")
    assert _refused(stack, f"ARGER@{hosted.domain}")


def test_a_new_mailbox_and_a_new_password_count_at_the_next_login(stack: Stack, hosted: Hosted) -> None:
    login = f"ÜBER@{hosted.domain}"
    assert _refused(stack, login)  # refused first: never remembered as unknown
    mailbox_id = hosted.create_mailbox(f"über@{hosted.domain}", PASSWORD)
    assert _logs_in(stack, login)
    response = hosted.api.patch(
        f"/v2/mail-addresses/{mailbox_id}/password", json={"password": "another long secret"}
    )
    assert response.status_code == 204, response.text
    assert _refused(stack, login)
    assert _logs_in(stack, login, "another long secret")


@pytest.mark.parametrize("login", ["no-at-sign", "x" * 300 + "@x.example"])
def test_logins_that_name_no_address_are_refused(stack: Stack, login: str) -> None:
    assert _refused(stack, login)
