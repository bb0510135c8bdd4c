"""End to end: mail read back byte for byte over POP3 (STARTTLS and implicit TLS) and with a third-party
client from Debian (curl's IMAP support); POP3 takes no password before TLS."""

from __future__ import annotations

import poplib
import shutil
import socket
import subprocess

import pytest

from postwerk.settings import split_host_port
from tests.conftest import missing
from tests.mail.conftest import NETWORK_TIMEOUT, Hosted, Stack, split_trace, wait_for_messages

PASSWORD = "pop and curl read it back"


def _message(recipient: str, subject: str) -> bytes:
    lines = [
        "From: Sender <sender@outside.example>",
        f"To: {recipient}",
        f"Subject: {subject}",
        f"Message-ID: <{subject.replace(' ', '-')}@client.postwerk.test>",
        "Date: Thu, 26 Nov 2026 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        "First line.",
        ".a line that SMTP and POP3 dot-stuff",
        "..two dots",
        "Grüße, trailing spaces   ",
        "",
    ]
    return "\r\n".join(lines).encode()


def _deliver(stack: Stack, hosted: Hosted, local: str, subject: str) -> tuple[str, bytes]:
    address = f"{local}@{hosted.domain}"
    hosted.create_mailbox(address, PASSWORD)
    sent = _message(address, subject)
    with stack.smtp() as client:
        assert client.sendmail("sender@outside.example", [address], sent) == {}
    wait_for_messages(stack, address, PASSWORD, 1)  # delivered (read over IMAP without marking it)
    return address, sent


def _retrieve(client: poplib.POP3, login: str) -> bytes:
    client.user(login)
    client.pass_(PASSWORD)
    count, _ = client.stat()
    assert count == 1
    _, lines, _ = client.retr(1)
    client.quit()
    # poplib strips the CRLFs and undoes the dot-stuffing: put the line ends back.
    return b"".join(line + b"\r\n" for line in lines)


def test_pop3_starttls_and_pop3s_read_the_message_byte_for_byte(stack: Stack, hosted: Hosted) -> None:
    login, sent = _deliver(stack, hosted, "pop", "pop3 read back")
    host, port = split_host_port(stack.settings.pop3)
    plain = poplib.POP3(host, port, timeout=NETWORK_TIMEOUT)
    plain.stls(stack.tls)
    over_starttls = _retrieve(plain, login)
    host, port = split_host_port(stack.settings.pop3s)
    over_tls = _retrieve(poplib.POP3_SSL(host, port, context=stack.tls, timeout=NETWORK_TIMEOUT), login)
    assert over_starttls == over_tls
    assert "received" in split_trace(over_tls, sent)


class _SourceBoundPOP3(poplib.POP3):
    """POP3 from 127.0.0.2: Dovecot counts a client on its own address (127.0.0.1) as secure."""

    def _create_socket(self, timeout: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=("127.0.0.2", 0))


def test_pop3_refuses_a_password_before_tls(stack: Stack, hosted: Hosted) -> None:
    login = f"careful-pop@{hosted.domain}"
    hosted.create_mailbox(login, PASSWORD)
    host, port = split_host_port(stack.settings.pop3)
    client = _SourceBoundPOP3(host, port, timeout=NETWORK_TIMEOUT)
    try:
        capabilities = client.capa()
        assert "STLS" in capabilities
        assert "USER" not in capabilities
        with pytest.raises(poplib.error_proto, match=r"(?i)plaintext"):
            client.user(login)
            client.pass_(PASSWORD)
    finally:
        client.close()


def test_curl_reads_the_message_byte_for_byte_over_imaps(stack: Stack, hosted: Hosted) -> None:
    curl = shutil.which("curl")
    if curl is None:
        missing("curl is not installed (`make mail-deps`)")
    assert curl is not None
    login, sent = _deliver(stack, hosted, "curl", "curl read back")
    _, port = split_host_port(stack.settings.imaps)
    hostname = stack.settings.mail_hostname
    # The credentials go on stdin (curl -K -), not on a command line others could read; --resolve: no DNS,
    # and the certificate is checked against the name it was made for.
    config = f'user = "{login}:{PASSWORD}"\n'
    result = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--max-time",
            str(int(NETWORK_TIMEOUT)),
            "--cacert",
            str(stack.mail.layout.tls_cert),
            "--resolve",
            f"{hostname}:{port}:127.0.0.1",
            "-K",
            "-",
            f"imaps://{hostname}:{port}/INBOX;UID=1",
        ],
        input=config.encode(),
        capture_output=True,
        timeout=NETWORK_TIMEOUT * 3,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert "received" in split_trace(result.stdout, sent)
