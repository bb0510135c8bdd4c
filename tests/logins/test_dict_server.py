"""The login dictionary with the lines Dovecot 2.3's dict passdb sends, over a real unix socket: a login is
normalised by the domain's rule, the answer is the JSON Dovecot's passdb reads, odd input is not found and a
failing store is a failure (never "no such user")."""

from __future__ import annotations

import asyncio
import json
import unicodedata
from pathlib import Path

from postwerk.domain.submission import Account, login_name
from postwerk.dovecot_dict import escape, unescape
from postwerk.logins.dict_server import LoginDictionary
from tests.conftest import unix_exchange

MAILBOX = "18c2c256-00c4-4aa8-a431-b606b9cf87e3"
HASH = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"
KEYS = {"ärger@example.org": (MAILBOX, HASH), "nohash@example.org": ("other", None)}


def _lookup(key: str) -> tuple[str, str | None] | None:
    return KEYS.get(key)


def test_a_login_is_found_by_the_domains_rule() -> None:
    dictionary = LoginDictionary(_lookup)
    expected = "O" + json.dumps({"user": MAILBOX, "password": HASH}, separators=(",", ":")) + "\n"
    for login in (
        "ärger@example.org",
        "ÄRGER@EXAMPLE.ORG",
        unicodedata.normalize("NFD", "Ärger@example.org"),
    ):
        assert login_name(login) == ("address", "ärger@example.org")
        assert dictionary.answer(f"shared/passdb/imap/{login}") == expected, login
    assert dictionary.answer("shared/passdb/imap/nohash@example.org") == 'O{"user":"other"}\n'
    for key in (
        "shared/passdb/imap/nobody@example.org",
        "shared/passdb/imap/",
        "shared/passdb/imap/not an address",
        "shared/userdb/ärger@example.org",
        "priv/quota/storage",
    ):
        assert dictionary.answer(key) == "N\n", key


BOX = "5b0f7c8e-3c1f-4c55-9d0b-2f6f9a3c1e11"
BOXES = {
    "db-app0000001": (Account(BOX, is_delivery_box=True, sending_enabled=True), HASH),
    "db-off0000001": (
        Account("off", is_delivery_box=True, sending_enabled=True, authentication_enabled=False),
        HASH,
    ),
}


def _box_lookup(name: str) -> tuple[Account, str | None] | None:
    return BOXES.get(name)


def test_delivery_boxes_log_in_by_name_on_smtp_only() -> None:
    dictionary = LoginDictionary(_lookup, box_lookup=_box_lookup)
    expected = "O" + json.dumps({"user": BOX, "password": HASH}, separators=(",", ":")) + "\n"
    assert dictionary.answer("shared/passdb/smtp/db-app0000001") == expected
    assert dictionary.answer("shared/passdb/smtp/DB-APP0000001") == expected
    for key in (
        "shared/passdb/imap/db-app0000001",
        "shared/passdb/pop3/db-app0000001",
        "shared/passdb/smtp/db-off0000001",  # authenticationEnabled = false
        "shared/passdb/smtp/db-nobody",
        "shared/passdb/smtp/",
        "shared/passdb/db-app0000001",  # no service: not a key of ours
    ):
        assert dictionary.answer(key) == "N\n", key
    # A mailbox logs in on every service, with the same answer.
    mailbox = dictionary.answer("shared/passdb/smtp/ÄRGER@example.org")
    assert mailbox == dictionary.answer("shared/passdb/imap/ärger@example.org") != "N\n"


def test_a_failing_store_is_a_failure() -> None:
    def broken(key: str) -> tuple[str, str | None] | None:
        raise ConnectionError("database away")

    reply = LoginDictionary(broken).answer("shared/passdb/imap/ärger@example.org")
    assert reply.startswith("F") and "database" not in reply


def test_dict_lines_over_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "logins.sock"
    # HELLO, then lookups as Dovecot 2.3.19 sends them (key escaped, maybe a user field after a tab).
    tabbed = escape("shared/passdb/imap/tab\there@example.org")
    payload = (
        "H3\t2\t0\t\tlogins\n"
        "Lshared/passdb/imap/ÄRGER@example.org\t\n"
        "Lshared/passdb/imap/nobody@example.org\n"
        f"L{tabbed}\n"
    ).encode()

    def client() -> bytes:
        return unix_exchange(path, payload, until=lambda received: received.count(b"\n") >= 3)

    async def scenario() -> bytes:
        dictionary = LoginDictionary(_lookup)
        server = await asyncio.get_running_loop().create_unix_server(dictionary.protocol, path=str(path))
        async with server:
            return await asyncio.to_thread(client)

    first, second, third, _ = asyncio.run(scenario()).split(b"\n")
    assert json.loads(unescape(first.decode()[1:])) == {"user": MAILBOX, "password": HASH}
    assert (second, third) == (b"N", b"N")


def test_escaping_round_trips() -> None:
    for text in ("plain", "a\tb\nc\rd\x01e", "\x01\x01t"):
        assert unescape(escape(text)) == text
    assert escape("a\tb") == "a\x01tb"
