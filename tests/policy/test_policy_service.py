"""The policy service over a real unix socket, the way Postfix talks to it: many requests per connection,
odd input (UTF-8, empty, binary, huge) always answered, never a crash; internal errors answered DUNNO.
A hosted recipient that may receive is answered OK (Postfix then skips its own lookup of the recipient);
one not found is answered DUNNO, left to Postfix's check of unknown recipients."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from postwerk.domain.delivery_quota import DISABLED_REPLY, LOOP_REPLY, Destination, Found, Mailbox
from postwerk.policy.protocol import MAX_LINE, RequestFramer
from postwerk.policy.service import FULL, PolicyService
from tests.conftest import unix_exchange

FULL_BOX = Destination("full@example.org", Mailbox("id-full", 100, 100))
UTF8_BOX = Destination("пошта@xn--e1afmkfd.xn--p1ai", Mailbox("id-utf8", 100, 500))
ROOMY = Destination("roomy@example.org", Mailbox("id-roomy", 1000, 0))
LOOP_A = Destination("loop-a@example.org", None, ("loop-b@example.org",))
LOOP_B = Destination("loop-b@example.org", None, ("loop-a@example.org",))
DISABLED = Destination("off@example.org", Mailbox("id-off", 100, 100), receiving_disabled=True)


def _lookup(keys: Sequence[str], domains: Sequence[str]) -> Found:
    table = {d.key: d for d in (FULL_BOX, UTF8_BOX, ROOMY, LOOP_A, LOOP_B, DISABLED)}
    return Found({key: table[key] for key in keys if key in table})


def _failing(keys: Sequence[str], domains: Sequence[str]) -> Found:
    raise RuntimeError("database gone")


def _request(recipient: bytes, *, state: bytes = b"RCPT", size: bytes = b"") -> bytes:
    lines = [
        b"request=smtpd_access_policy",
        b"protocol_state=" + state,
        b"protocol_name=ESMTP",
        b"client_address=127.0.0.1",
        b"sender=a@outside.example",
        b"recipient=" + recipient,
        b"size=" + size,
        b"",
        b"",
    ]
    return b"\n".join(lines)


def _converse(path: Path, payload: bytes, answers: int) -> list[bytes]:
    received = unix_exchange(path, payload, until=lambda received: received.count(b"\n\n") >= answers)
    assert received.count(b"\n\n") >= answers, f"connection closed after {received!r}"
    return [part + b"\n\n" for part in received.split(b"\n\n")[:answers]]


async def _serve(service: PolicyService, path: Path, payloads: list[tuple[bytes, int]]) -> list[list[bytes]]:
    server = await asyncio.get_running_loop().create_unix_server(service.protocol, path=str(path))
    async with server:
        return [await asyncio.to_thread(_converse, path, payload, count) for payload, count in payloads]


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "policy.sock"


def _answer(action: str) -> bytes:
    return f"action={action}\n\n".encode()


def test_answers_on_one_connection(socket_path: Path) -> None:
    service = PolicyService(_lookup)
    conversation = b"".join(
        [
            _request(b"full@example.org"),
            _request(b"roomy@example.org"),
            _request("пошта@пример.рф".encode()),  # SMTPUTF8: raw UTF-8
            _request(b"roomy@example.org", size=b"5000"),  # announced size does not fit
            _request(b"roomy@example.org", size=b"-5"),  # nonsense size: ignored
            _request(b"full@example.org", state=b"DATA"),  # only RCPT is checked
            b"\n",  # an empty request
            b"no equals sign\nrecipient=full@example.org\n\n",  # malformed
            _request(b"\xff\xfe@example.org"),  # not UTF-8
            _request(b""),
            _request(b"LOOP-B@example.org"),  # forwards only in a circle
            _request(b"off+tag@example.org"),  # receiving disabled (before the quota: it is full too)
            _request(b"nobody@example.org"),  # not found: Postfix's own check decides
            _request(b"Roomy+tag@Example.org"),  # found without its extension
        ]
    )
    (answers,) = asyncio.run(_serve(service, socket_path, [(conversation, 14)]))
    assert answers == [
        _answer(FULL),
        _answer("OK"),
        _answer(FULL),
        _answer(FULL),
        _answer("OK"),
        _answer("DUNNO"),
        _answer("DUNNO"),
        _answer("DUNNO"),
        _answer("DUNNO"),
        _answer("DUNNO"),
        _answer(LOOP_REPLY),
        _answer(DISABLED_REPLY),
        _answer("DUNNO"),
        _answer("OK"),
    ]


def test_a_huge_request_is_answered_once_and_the_connection_lives_on(socket_path: Path) -> None:
    service = PolicyService(_lookup)
    huge = _request(b"full@example.org" + b"x" * (MAX_LINE * 4))
    conversation = huge + _request(b"full@example.org")
    (answers,) = asyncio.run(_serve(service, socket_path, [(conversation, 2)]))
    assert answers == [_answer("DUNNO"), _answer(FULL)]


def test_internal_errors_answer_dunno(socket_path: Path) -> None:
    service = PolicyService(_failing)
    (answers,) = asyncio.run(_serve(service, socket_path, [(_request(b"full@example.org"), 1)]))
    assert answers == [_answer("DUNNO")]


def test_framing_in_pieces() -> None:
    framer = RequestFramer()
    data = _request(b"full@example.org") + _request(b"roomy@example.org")
    requests = [request for byte in data for request in framer.feed(bytes([byte]))]
    assert [r.get("recipient") for r in requests] == ["full@example.org", "roomy@example.org"]
    assert not any(r.malformed for r in requests)
