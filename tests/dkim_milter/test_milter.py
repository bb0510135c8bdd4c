"""The submission milter on a real unix socket, driven by an independent MTA side of the milter protocol
(miltertest), on both databases: who may send as which From: address (553 5.7.1 otherwise), and a DKIM
signature that dkimpy verifies against the public key exactly as the domain's DNS records publish it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest
from miltertest import MilterConnection, constants
from sqlalchemy import Engine

from postwerk.dkim.__main__ import milter_for
from postwerk.dkim.milter import SubmissionMilter
from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context, delivery_boxes, mail_addresses, projects
from postwerk.service import dkim as dkim_service
from postwerk.service.access import ADMIN
from postwerk.store.repository import Database

PASSWORD = "a long secret"
BODY = "Hello,\r\n\r\nthe report is attached.   \r\n\r\n-- \r\nA script\r\n"


@dataclass(frozen=True)
class Installation:
    context: Context
    domain: str
    idn_domain: str  # its Unicode form
    idn_ascii: str
    mailbox: str  # ids (the SASL login names Postfix hands over)
    other_mailbox: str
    delivery_box: str
    foreign_box: str  # a delivery box of another project
    foreign_domain: str


def _address(context: Context, project: str, address: str, *forwards: str, mailbox: bool = True) -> str:
    return mail_addresses.create(
        context,
        ADMIN,
        project,
        mail_addresses.NewAddress(
            address=address,
            forward_addresses=forwards,
            mailbox=mail_addresses.NewMailbox(password=PASSWORD, quota_in_bytes=-1) if mailbox else None,
        ),
    )


@pytest.fixture(scope="module")
def installation(engine: Engine) -> Installation:
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))
    project, short_id = projects.create_project(context, "milter test")
    suffix = short_id.removeprefix("p-")
    domain, idn = f"{suffix}.milter.example", f"почта-{suffix}.рф"
    idn_ascii = projects.add_domain(context, domain, project).ascii
    idn_ascii = projects.add_domain(context, idn, project).ascii
    mailbox = _address(context, project, f"Anna@{domain}")
    other = _address(context, project, f"bert@{domain}")
    _address(context, project, f"team@{domain}", f"anna@{domain}", "someone@elsewhere.example", mailbox=False)
    _address(context, project, f"пошта@{idn}")
    box = delivery_boxes.create(context, ADMIN, project, "shop", PASSWORD)
    foreign_project, foreign_short = projects.create_project(context, "another customer")
    foreign_domain = f"{foreign_short.removeprefix('p-')}.other.example"
    projects.add_domain(context, foreign_domain, foreign_project)
    foreign_box = delivery_boxes.create(context, ADMIN, foreign_project, "their shop", PASSWORD)
    return Installation(context, domain, idn, idn_ascii, mailbox, other, box, foreign_box, foreign_domain)


@contextmanager
def serving(milter: SubmissionMilter, path: Path) -> Iterator[Path]:
    """The milter on a unix socket, on an event loop of its own in a thread (as `serve_unix` runs it)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def run() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.get_running_loop().create_unix_server(milter.protocol, path=str(path))
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield path
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def milter_socket(installation: Installation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("milter") / "dkim.sock"
    with serving(milter_for(installation.context.db), path):
        yield path


@dataclass
class Outcome:
    eoh: tuple[str, dict[str, object]]
    replies: list[tuple[str, dict[str, object]]]  # at the end of the body (empty when refused before)

    @property
    def refusal(self) -> str | None:
        for command, fields in [self.eoh, *self.replies]:
            if command == constants.SMFIR_REPLYCODE:
                return f"{fields['smtpcode']} {fields['text']}"
        return None

    @property
    def signature(self) -> bytes | None:
        inserted = [f for c, f in self.replies if c == constants.SMFIR_INSHEADER]
        if not inserted:
            return None
        assert len(inserted) == 1 and inserted[0]["index"] == 0 and inserted[0]["name"] == "DKIM-Signature"
        value = inserted[0]["value"]
        assert isinstance(value, str) and "\r" not in value  # folded with LF, as Postfix wants it
        return value.encode()


def converse(
    path: Path,
    login: str | None,
    headers: Sequence[tuple[str, str]],
    body: str = BODY,
    *,
    offer_no_header_replies: bool = True,
    messages: int = 1,
) -> list[Outcome]:
    """One milter connection the way Postfix's cleanup drives it: negotiation, then per message the MAIL
    macros (the SASL login), MAIL, the headers, end of headers, the body, end of body."""
    outcomes = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        connection = MilterConnection(sock)
        protocol = constants.SMFI_V6_PROT
        if not offer_no_header_replies:
            protocol &= ~constants.SMFIP_NR_HDR
        actions, steps = connection.optneg_mta(protocol=protocol)
        assert actions == constants.SMFIF_ADDHDRS
        assert steps & constants.SMFIP_NOCONNECT and steps & constants.SMFIP_NORCPT
        for _ in range(messages):
            macros = {"{auth_authen}": login} if login is not None else {}
            connection.send_macro(constants.SMFIC_MAIL, **macros, i="4ABCD")
            connection.send(constants.SMFIC_MAIL, args=["<sender@example.org>"])
            for name, value in headers:
                if steps & constants.SMFIP_NR_HDR:
                    connection._send(constants.SMFIC_HEADER, name=name, value=value)
                else:
                    connection.send(constants.SMFIC_HEADER, name=name, value=value)
            eoh = connection.send_ar(constants.SMFIC_EOH)
            replies: list[tuple[str, dict[str, object]]] = []
            if eoh[0] == constants.SMFIR_CONTINUE:
                connection.send_body(body)
                replies = connection.send_eom()
            else:
                connection._send(constants.SMFIC_ABORT)
            outcomes.append(Outcome(eoh, replies))
        connection._send(constants.SMFIC_QUIT)
    return outcomes


def _headers(from_value: str, **more: str) -> list[tuple[str, str]]:
    return [
        ("Received", "from client (client [127.0.0.2]) by mx.postwerk.test"),
        ("From", from_value),
        ("To", "Friend <friend@elsewhere.example>"),
        ("Subject", "Monthly   report"),
        ("Date", "Thu, 26 Nov 2026 13:00:00 +0000"),
        ("Message-ID", "<report-1@postwerk.test>"),
        *more.items(),
    ]


def _published(installation: Installation, domain: str) -> dict[bytes, bytes]:
    """The domain's DKIM TXT records as the records (CLI and API) tell the customer to publish them."""
    records = dkim_service.domain_records(installation.context, domain).records
    return {f"{r.name}.".encode(): r.value.encode() for r in records if r.purpose == "dkim"}


def verify(
    installation: Installation, domain: str, outcome: Outcome, headers: Sequence[tuple[str, str]]
) -> bool:
    signature = outcome.signature
    assert signature is not None
    # The message as it leaves: Postfix puts the inserted header on top, "Name: value", CRLF line ends.
    lines = [b"DKIM-Signature: " + signature.replace(b"\n", b"\r\n")]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    message = b"\r\n".join(lines) + b"\r\n\r\n" + BODY.encode()
    published = _published(installation, domain)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return published.get(name)

    return bool(dkim.verify(message, dnsfunc=dns))


def test_a_mailbox_sends_as_itself_signed_and_verifiable(
    installation: Installation, milter_socket: Path
) -> None:
    headers = _headers(f"Anna Example <anna@{installation.domain}>")
    (outcome,) = converse(milter_socket, installation.mailbox, headers)
    assert outcome.refusal is None and outcome.eoh[0] == constants.SMFIR_CONTINUE
    assert outcome.replies[-1][0] == constants.SMFIR_CONTINUE
    assert verify(installation, installation.domain, outcome, headers)
    signature = outcome.signature
    assert signature is not None
    fields = dict(
        part.strip().split(b"=", 1) for part in signature.replace(b"\n", b"").split(b";") if b"=" in part
    )
    assert fields[b"d"] == installation.domain.encode() and fields[b"c"] == b"relaxed/relaxed"
    assert fields[b"a"] == b"rsa-sha256"
    signed = [name.strip() for name in fields[b"h"].replace(b"\t", b"").split(b":")]
    assert signed.count(b"from") == 2 and b"subject" in signed and b"received" not in signed
    # A changed body or an added From: breaks it.
    tampered = Outcome(outcome.eoh, outcome.replies)
    assert not verify(installation, installation.domain, tampered, [*headers, ("From", "x@evil.example")])


def test_who_may_send_as_which_from_address(installation: Installation, milter_socket: Path) -> None:
    domain = installation.domain
    allowed = [
        (installation.mailbox, f"ANNA@{domain}"),  # any case
        (installation.mailbox, f"<team@{domain}>"),  # forwards to the mailbox
        (installation.mailbox, f"anna+news@{domain}"),  # its +extension
        (installation.delivery_box, f"Shop <noreply@{domain}>"),  # any address of the project's domains
        (installation.delivery_box, f"info@{installation.idn_domain}"),
        (installation.delivery_box, f"info@{installation.idn_ascii}"),
    ]
    for login, from_value in allowed:
        (outcome,) = converse(milter_socket, login, _headers(from_value))
        assert outcome.refusal is None, (login, from_value, outcome.refusal)
        assert outcome.signature is not None
    refused = [
        (installation.other_mailbox, f"anna@{domain}"),  # another mailbox's address
        (installation.mailbox, f"bert@{domain}"),
        (installation.mailbox, f"noreply@{domain}"),  # not an address at all
        (installation.mailbox, "anna@elsewhere.example"),  # a domain not hosted
        (installation.foreign_box, f"noreply@{domain}"),  # another project's delivery box
        (installation.delivery_box, f"noreply@{installation.foreign_domain}"),
        ("not-an-account", f"anna@{domain}"),
    ]
    for login, from_value in refused:
        (outcome,) = converse(milter_socket, login, _headers(from_value))
        assert outcome.refusal is not None and outcome.refusal.startswith("553 5.7.1"), (login, from_value)
        assert "may not send as" in outcome.refusal
        assert outcome.eoh[0] == constants.SMFIR_REPLYCODE and not outcome.replies


def test_ambiguous_or_missing_from_headers_are_refused(
    installation: Installation, milter_socket: Path
) -> None:
    domain, box = installation.domain, installation.delivery_box
    cases = {
        "no From": [h for h in _headers(f"a@{domain}") if h[0] != "From"],
        "two From headers": [*_headers(f"a@{domain}"), ("From", f"b@{domain}")],
        "two addresses": _headers(f"a@{domain}, b@{domain}"),
        "a group": _headers(f"team: a@{domain};"),
        "trailing garbage": _headers(f"<a@{domain}>@evil.example"),
        "quoted local part": _headers(f'"a b"@{domain}'),
        "no address": _headers("nobody"),
    }
    for case, headers in cases.items():
        (outcome,) = converse(milter_socket, box, headers)
        assert outcome.refusal is not None and outcome.refusal.startswith("553 5.7.1"), case
        assert "From:" in outcome.refusal, case
    # Folded and encoded headers are fine: only the address counts.
    (outcome,) = converse(milter_socket, box, _headers(f"=?utf-8?q?M=C3=BCller?=\n\t<m@{domain}>"))
    assert outcome.refusal is None and outcome.signature is not None


def test_no_login_is_refused(installation: Installation, milter_socket: Path) -> None:
    (outcome,) = converse(milter_socket, None, _headers(f"anna@{installation.domain}"))
    assert outcome.refusal is not None and outcome.refusal.startswith("530 5.7.0")


def test_several_messages_on_one_connection_and_both_header_modes(
    installation: Installation, milter_socket: Path
) -> None:
    headers = _headers(f"anna@{installation.domain}")
    for offer in (True, False):
        outcomes = converse(
            milter_socket, installation.mailbox, headers, offer_no_header_replies=offer, messages=3
        )
        assert all(verify(installation, installation.domain, outcome, headers) for outcome in outcomes)
    (refused, signed) = [
        converse(milter_socket, login, headers)[0]
        for login in (installation.other_mailbox, installation.mailbox)
    ]
    assert refused.refusal is not None and signed.signature is not None


def test_a_rotated_key_signs_the_next_message_without_a_restart(
    installation: Installation, milter_socket: Path
) -> None:
    domain = installation.idn_ascii
    headers = _headers(f"info@{installation.idn_domain}")
    first = converse(milter_socket, installation.delivery_box, headers)[0]
    dkim_service.rotate(installation.context, domain)
    second = converse(milter_socket, installation.delivery_box, headers)[0]
    selectors = [
        dict(
            p.strip().split(b"=", 1)
            for p in (o.signature or b"").replace(b"\n", b"").split(b";")
            if b"=" in p
        )[b"s"]
        for o in (first, second)
    ]
    assert selectors[0] != selectors[1]
    # Both verify against the published records: the retired key stays listed.
    assert verify(installation, domain, first, headers) and verify(installation, domain, second, headers)


def test_a_domain_without_a_key_sends_unsigned(installation: Installation, milter_socket: Path) -> None:
    from sqlalchemy import delete, select

    from postwerk.store.tables import dkim_keys, domains

    with installation.context.db.write() as connection:
        domain_id = connection.execute(
            select(domains.c.id).where(domains.c.name_ascii == installation.foreign_domain)
        ).scalar_one()
        connection.execute(delete(dkim_keys).where(dkim_keys.c.domain_id == domain_id))
    (outcome,) = converse(
        milter_socket, installation.foreign_box, _headers(f"x@{installation.foreign_domain}")
    )
    assert outcome.refusal is None and outcome.signature is None
    assert outcome.replies == [(constants.SMFIR_CONTINUE, {})]


def test_a_broken_store_fails_closed(tmp_path: Path) -> None:
    def reading(decide: object) -> object:
        raise RuntimeError("database gone")

    milter = SubmissionMilter(reading, sign=lambda *_: b"")  # type: ignore[arg-type]
    with serving(milter, tmp_path / "dkim.sock") as path:
        (outcome,) = converse(path, "some-id", _headers("a@example.org"))
    assert outcome.refusal is not None and outcome.refusal.startswith("451 4.3.0")


def test_garbage_closes_the_connection_and_the_milter_serves_on(
    installation: Installation, milter_socket: Path
) -> None:
    for garbage in (b"\xff\xff\xff\xffO", b"\x00\x00\x00\x00", b"\x00\x00\x00\x05Ohi"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(milter_socket))
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(100) == b""
    (outcome,) = converse(milter_socket, installation.mailbox, _headers(f"anna@{installation.domain}"))
    assert outcome.signature is not None


def test_the_service_process(installation: Installation, tmp_path: Path, engine: Engine) -> None:
    """`python -m postwerk.dkim`, as the supervisor starts it (SQLite: the database from the environment)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("the process finds its database by POSTWERK_DATABASE_URL; the SQLite run covers it")
    path = tmp_path / "dkim.sock"
    env = {**os.environ, "POSTWERK_DATABASE_URL": str(engine.url), "POSTWERK_LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [sys.executable, "-m", "postwerk.dkim", "--socket", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the milter did not start"
            time.sleep(0.05)
        headers = _headers(f"anna@{installation.domain}")
        (outcome,) = converse(path, installation.mailbox, headers)
        assert verify(installation, installation.domain, outcome, headers)
        assert oct(path.stat().st_mode & 0o777) == oct(0o660)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert not path.exists()
    assert b"PRIVATE KEY" not in output
