"""The real stack for end-to-end tests: Postwerk's API with its own Postfix and Dovecot, on free loopback
ports, in a data folder of its own that the mail servers' users can enter; started once per session and
always stopped."""

from __future__ import annotations

import base64
import imaplib
import os
import shutil
import smtplib
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from postwerk.bootstrap import build_context
from postwerk.mailstack.layout import DOVECOT, POSTFIX
from postwerk.mailstack.stack import MailStack
from postwerk.service import Context
from postwerk.service import projects as project_service
from postwerk.service.provider import ensure_postmaster_mailbox
from postwerk.settings import Settings, split_host_port
from postwerk.store.scratch import scratch_postgres_role
from tests.api.conftest import free_port, mailbox_body, serving
from tests.conftest import POSTGRES_URL, missing, postgres_reachable
from tests.mail.sink import Sink

NETWORK_TIMEOUT = 10.0
DELIVERY_TIMEOUT = 30.0
DELETION_GRACE = 3
TRACE_HEADERS = ("return-path", "received", "delivered-to", "x-original-to")


@dataclass
class Stack:
    settings: Settings
    mail: MailStack
    context: Context
    base_url: str
    tls: ssl.SSLContext
    sink: Sink  # the relay host: the rest of the world

    def log_tail(self, lines: int = 40) -> str:
        logs = self.mail.layout.logs
        assert logs is not None
        parts = []
        for name in ("postfix.log", "dovecot.log"):
            path = logs / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def smtp(self) -> smtplib.SMTP:
        host, port = split_host_port(self.settings.smtp)
        client = smtplib.SMTP(host, port, local_hostname="client.postwerk.test", timeout=NETWORK_TIMEOUT)
        client.ehlo()
        return client


def _free_listener() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    yield from _running_stack(None)


@pytest.fixture(scope="session")
def postgres_stack() -> Iterator[Stack]:
    """A second stack, on PostgreSQL: Postfix's and Dovecot's pgsql clients on Postwerk's schema."""
    reason = postgres_reachable()
    if reason is not None:
        missing(reason)
    with scratch_postgres_role(POSTGRES_URL, prefix="pw_mailtest") as (_, database_url):
        yield from _running_stack(database_url)


def _running_stack(database_url: str | None) -> Iterator[Stack]:
    if os.geteuid() != 0:
        missing("the mail servers need root")
    if not (POSTFIX.exists() and DOVECOT.exists()):
        missing("Postfix and Dovecot are not installed (`make mail-deps`)")
    # pytest's own temporary folders are closed to other users (0700): the mail servers' users must pass.
    folder = Path(tempfile.mkdtemp(prefix="postwerk-mail-test-", dir="/var/tmp"))
    folder.chmod(0o711)
    sink = Sink(free_port())
    settings = Settings(
        data_dir=folder / "data",
        database_url=database_url,
        smtp=_free_listener(),
        submission=_free_listener(),
        submissions=_free_listener(),
        imap=_free_listener(),
        imaps=_free_listener(),
        pop3=_free_listener(),
        pop3s=_free_listener(),
        mail_hostname="mx.postwerk.example",
        reinject=_free_listener(),
        relay_host=f"127.0.0.1:{sink.port}",
        # Short, so that tests of retries and bounces end within seconds.
        retry_min=1,
        retry_max=2,
        queue_lifetime=120,
        # Short, so that the mail of deleted mailboxes is seen removed within seconds.
        mail_deletion_grace=DELETION_GRACE,
        mail_sweep_interval=1,
    )
    mail = MailStack(settings)
    context: Context | None = None
    try:
        context = build_context(settings)
        sink.start()
        ensure_postmaster_mailbox(context, settings.mail_hostname, settings.data_dir)
        mail.prepare()
        mail.start()
        mail.wait_ready()
        tls = ssl.create_default_context(cafile=str(mail.layout.tls_cert))
        tls.check_hostname = False  # the certificate names mx.postwerk.example; tests connect to 127.0.0.1
        with serving(context) as base_url:
            yield Stack(settings, mail, context, base_url, tls, sink)
    finally:
        mail.stop()
        sink.stop()
        if context is not None:
            context.db.engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Hosted:
    """A project with a plain and an internationalised domain, and an API client with its token."""

    project_id: str
    domain: str
    idn_domain: str
    api: httpx.Client

    def create_mailbox(self, address: str, password: str) -> str:
        response = self.api.post(
            f"/v2/projects/{self.project_id}/mail-addresses", json=mailbox_body(address, password)
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def create_address(self, body: dict[str, Any]) -> str:
        response = self.api.post(f"/v2/projects/{self.project_id}/mail-addresses", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture
def hosted(stack: Stack) -> Iterator[Hosted]:
    yield from _hosted_on(stack)


@pytest.fixture
def postgres_hosted(postgres_stack: Stack) -> Iterator[Hosted]:
    yield from _hosted_on(postgres_stack)


def _hosted_on(stack: Stack) -> Iterator[Hosted]:
    project_id, short_id = project_service.create_project(stack.context, "mail test")
    suffix = short_id.removeprefix("p-")
    domain = f"{suffix}.example.org"
    idn_domain = f"пошта-{suffix}.укр"
    project_service.add_domain(stack.context, domain, project_id)
    project_service.add_domain(stack.context, idn_domain, project_id)
    _, token = project_service.create_token(
        stack.context, admin=False, project_reference=project_id, read_only=False
    )
    with httpx.Client(
        base_url=stack.base_url, headers={"x-access-token": token}, timeout=NETWORK_TIMEOUT
    ) as client:
        yield Hosted(project_id, domain, idn_domain, client)


# --- IMAP ------------------------------------------------------------------------------------------------


class SourceBoundIMAP4(imaplib.IMAP4):
    """IMAP from a chosen loopback address: Dovecot counts a client on its own address as secure."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self._source = source
        super().__init__(host, port, timeout=NETWORK_TIMEOUT)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))


def imap_login(stack: Stack, login: str, password: str, *, implicit_tls: bool = False) -> imaplib.IMAP4:
    """Logged in with AUTHENTICATE PLAIN (imaplib's LOGIN is ASCII-only), over STARTTLS or IMAPS."""
    if implicit_tls:
        host, port = split_host_port(stack.settings.imaps)
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=stack.tls, timeout=NETWORK_TIMEOUT)
    else:
        host, port = split_host_port(stack.settings.imap)
        client = imaplib.IMAP4(host, port, timeout=NETWORK_TIMEOUT)
        client.starttls(stack.tls)
    credentials = b"\0" + login.encode() + b"\0" + password.encode()
    client.authenticate("PLAIN", lambda _challenge: credentials)
    return client


def fetch_all(client: imaplib.IMAP4, folder: str = "INBOX") -> list[bytes]:
    status, _ = client.select(folder, readonly=True)
    assert status == "OK"
    status, data = client.uid("SEARCH", "ALL")  # type: ignore[arg-type]
    assert status == "OK"
    messages = []
    for uid in (data[0] or b"").split():
        status, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
        assert status == "OK"
        messages.extend(part[1] for part in parts if isinstance(part, tuple))
    return messages


def wait_for_messages(
    stack: Stack, login: str, password: str, count: int, *, implicit_tls: bool = False
) -> list[bytes]:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        client = imap_login(stack, login, password, implicit_tls=implicit_tls)
        try:
            messages = fetch_all(client)
        finally:
            client.logout()
        if len(messages) >= count or time.monotonic() > deadline:
            assert len(messages) >= count, f"{len(messages)} of {count} messages arrived\n{stack.log_tail()}"
            return messages
        time.sleep(0.2)


def split_trace(stored: bytes, sent: bytes) -> list[str]:
    """The stored message must be the sent bytes with only trace headers on top; returns their names."""
    assert stored.endswith(sent), f"stored message differs from the one sent:\n{stored!r}"
    names = []
    for line in stored[: len(stored) - len(sent)].split(b"\r\n"):
        if not line or line[:1] in (b" ", b"\t"):
            continue
        name = line.split(b":", 1)[0].decode().lower()
        assert name in TRACE_HEADERS, f"unexpected header {name!r} added on top of the message"
        names.append(name)
    return names


def plain_credentials(login: str, password: str) -> str:
    return base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()


def submission_client(stack: Stack, login: str, password: str) -> smtplib.SMTP:
    """A client logged in on the submission port (STARTTLS, then AUTH PLAIN)."""
    host, port = split_host_port(stack.settings.submission)
    client = smtplib.SMTP(host, port, local_hostname="client.postwerk.test", timeout=NETWORK_TIMEOUT)
    client.ehlo()
    client.starttls(context=stack.tls)
    client.ehlo()
    code, reply = client.docmd("AUTH", "PLAIN " + plain_credentials(login, password))
    assert code == 235, f"{login}: {code} {reply!r}\n{stack.log_tail()}"
    return client
