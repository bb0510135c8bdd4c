"""Postwerk's own lookup tables for Postfix, served over Postfix's socketmap protocol on a unix socket.

Why not Debian's postsrsd 1.10: it rewrites every sender it is asked about through `sender_canonical_maps`
(so also mail delivered into local mailboxes, whose Return-Path would then be an SRS address) and excludes
senders by a static domain list given at its start, so a domain hosted later would be rewritten until a
restart. Here Postfix asks only for mail that leaves (a second pass, see main.cf and master.cf), and the
answer reads the domain table on every lookup.

Maps (`socketmap:unix:PATH:NAME`):
- `srs-forward` (the second pass's `sender_canonical_maps`): the SRS form of a sender whose domain is neither
  hosted nor the SRS domain; NOTFOUND otherwise, so mail from hosted domains is never rewritten.
- `srs-reverse` (in `virtual_alias_maps`): the original sender behind a valid SRS address of ours, so a
  bounce to it reaches that sender; NOTFOUND for forged or expired ones (then refused at RCPT as unknown).
- `address-key` (last in `virtual_alias_maps`) and `domain-key` (last in `virtual_alias_domains`), asked
  only for keys with non-ASCII letters that the SQL maps did not find (`UTF8_KEY_FILTER`): a recipient or
  domain spelled another way than the SQL maps can find (decomposed letters, NFD: Postfix case-folds a key
  but does not normalise it). `address-key` answers the recipient's lookup key (NFC, A-label domain) when a
  hosted address takes it (itself or, without its `+extension`, its base address), and Postfix expands that
  again from the start, through the routes; `domain-key` answers the A-label of a hosted domain. NOTFOUND
  otherwise (then the catch-all, or 550 5.1.1 at RCPT, as for the address written composed).
- `sender-owners` (`smtpd_sender_login_maps`, used by the submission services only): the account ids that
  may send as an envelope sender, comma-separated (`postwerk.domain.submission.sender_owners`); NOTFOUND
  when nobody may, and Postfix refuses the sender with 553 5.7.1.
- `sending-disabled` (`check_sasl_access` of the submission services): for a SASL login name (an account
  id) whose sending is disabled, the access reply that refuses its mail (550 5.7.1); NOTFOUND otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from postwerk.domain.addresses import parse_domain
from postwerk.domain.delivery_quota import recipient_keys
from postwerk.domain.errors import DomainError
from postwerk.domain.srs import SrsKey, is_srs_address
from postwerk.domain.submission import sender_owners, sending_refusal
from postwerk.domain.text import plain_decimal
from postwerk.service_main import start_socket_service
from postwerk.store import repository as repo
from postwerk.store.mail_lookups import SenderLookup, find_account
from postwerk.store.repository import Database
from postwerk.unix_sockets import OrderedReplies, Reply, run_service, serve_unix

log = logging.getLogger("postwerk.mailstack.tables")

SECRET_BYTES = 32
MAX_REQUEST = 100_000  # Postfix's own socketmap limit
MAX_LENGTH_DIGITS = 6
READ_TIMEOUT = 600.0  # Postfix keeps a connection open between lookups and closes idle ones itself
UTF8_KEY_FILTER_FILE = "postwerk-utf8-keys.regexp"
# The regexp table in front of `address-key` and `domain-key` (a file: main.cf would expand its `$`): it
# passes on only keys with a byte outside printable ASCII, and no @domain key. ASCII recipients and domains
# (the SQL maps find them as they are) and the routes' internal answers never wait on the socket. Postfix
# asks such a pattern table (unlike the SQL maps) for the recipient as given only, never for it without its
# +extension, nor for @domain; it asks every map for that key before it tries @domain, so the catch-all
# never takes an NFD spelling of an existing address.
UTF8_KEY_FILTER = "if !/^@/\n/^(.*[^ -~].*)$/ ${1}\nendif\n"


def ensure_secret(path: Path) -> bytes:
    """The SRS key, made at first start and kept owner-only: SRS addresses must keep reversing across
    restarts (bounces come back days later)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
    return bytes.fromhex(path.read_text().strip())


class Tables:
    """The answers, apart from the wire protocol (tests call them directly)."""

    def __init__(self, database: Database, key: SrsKey, srs_domain: str) -> None:
        self.database = database
        self.key = key
        self.srs_domain = srs_domain.lower()
        self._handlers: dict[str, Callable[[str], str | None]] = {
            "srs-forward": self.srs_forward,
            "srs-reverse": self.srs_reverse,
            "address-key": self.address_key,
            "domain-key": self.domain_key,
            "sender-owners": self.sender_owners,
            "sending-disabled": self.sending_disabled,
        }

    def is_hosted(self, domain: str) -> bool:
        try:
            ascii_name = parse_domain(domain).ascii
        except DomainError:
            return False
        if ascii_name == self.srs_domain:
            return True
        return self.database.read_with(
            lambda connection: repo.find_domain(connection, ascii_name) is not None
        )

    def srs_forward(self, sender: str) -> str | None:
        local, at, domain = sender.rpartition("@")
        if not (at and local and domain) or self.is_hosted(domain):
            return None
        return self.key.forward(sender, self.srs_domain)

    def srs_reverse(self, recipient: str) -> str | None:
        if not is_srs_address(recipient):
            return None
        return self.key.reverse(recipient, self.srs_domain)

    def sender_owners(self, sender: str) -> str | None:
        owners = self.database.read_with(lambda connection: sender_owners(sender, SenderLookup(connection)))
        return ",".join(owners) if owners else None

    def sending_disabled(self, login: str) -> str | None:
        account = self.database.read_with(lambda connection: find_account(connection, login.strip().lower()))
        return sending_refusal(account)

    def address_key(self, recipient: str) -> str | None:
        """The lookup key of `recipient` when it differs from how it is written and a hosted address takes
        it (exactly, or without the +extension: Postfix then finds that address from the key)."""
        keys = recipient_keys(recipient)
        if keys is None or keys.exact == recipient:
            return None
        taken = self.database.read_with(
            lambda connection: any(repo.address_key_taken(connection, key) for key in keys.address_keys)
        )
        return keys.exact if taken else None

    def domain_key(self, domain: str) -> str | None:
        """The A-label of a hosted domain written another way than the domain table holds it."""
        try:
            ascii_name = parse_domain(domain).ascii
        except DomainError:
            return None
        if ascii_name == domain or not self.is_hosted(ascii_name):
            return None
        return ascii_name

    def lookup(self, name: str, key: str) -> str | None:
        handler = self._handlers.get(name)
        if handler is None:
            raise KeyError(name)
        return handler(key)


def _netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


def answer(tables: Tables, request: bytes) -> bytes:
    """One socketmap reply (without its netstring frame) to one request ("NAME KEY")."""
    name, _, key = request.decode("utf-8", errors="surrogateescape").partition(" ")
    try:
        value = tables.lookup(name, key)
    except KeyError:
        return b"PERM no such map"
    except Exception as error:  # the database away: on TEMP Postfix defers the mail, never bounces it
        log.warning("socketmap %s lookup failed: %s", name, type(error).__name__)
        return b"TEMP lookup failed"
    if value is None:
        return b"NOTFOUND "
    return b"OK " + value.encode("utf-8", errors="surrogateescape")


class SocketmapConnection(OrderedReplies[bytes]):
    """One connection from Postfix: many lookups (netstrings, "NAME KEY"), until Postfix closes an idle one
    or `READ_TIMEOUT` passes without a request. A request that is no netstring ends the connection after the
    answers before it. The lookups run on the event loop: a thread hop costs more than a lookup, and the
    mail services' databases bound every lookup in time (service_main.mail_service_database)."""

    def __init__(self, tables: Tables) -> None:
        super().__init__()
        self._tables = tables
        self._buffer = b""
        self._idle: asyncio.TimerHandle | None = None
        self._last_data = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._last_data = asyncio.get_running_loop().time()
        self._check_idle()

    def _check_idle(self) -> None:
        # One timer at a time, moved on when it fires early, rather than a new timer for every lookup.
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self._last_data
        if quiet >= READ_TIMEOUT:
            self.close()
        else:
            self._idle = loop.call_later(READ_TIMEOUT - quiet, self._check_idle)

    def requests(self, data: bytes) -> list[bytes]:
        self._last_data = asyncio.get_running_loop().time()
        self._buffer += data
        found: list[bytes] = []
        while self._buffer:
            digits, colon, rest = self._buffer.partition(b":")
            if not colon:
                if len(digits) > MAX_LENGTH_DIGITS or not digits.isdigit():
                    return self._broken(found)
                break
            length = plain_decimal(digits.decode("ascii", "replace"), MAX_LENGTH_DIGITS)
            if length is None or length > MAX_REQUEST:
                return self._broken(found)
            if len(rest) <= length:
                break
            if rest[length : length + 1] != b",":
                return self._broken(found)
            found.append(rest[:length])
            self._buffer = rest[length + 1 :]
        return found

    def _broken(self, found: list[bytes]) -> list[bytes]:
        log.debug("socketmap connection closed: not a netstring")
        self._buffer = b""
        self.end_after_these()
        return found

    def reply(self, request: bytes) -> Reply:
        return _netstring(answer(self._tables, request))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        super().connection_lost(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m postwerk.mailstack.tables --socket PATH --group GROUP --srs-domain NAME --srs-secret FILE`
    (started by the embedded mail stack under its supervisor; the database from Postwerk's settings)."""

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--srs-domain", required=True, help="the domain of SRS addresses (mail host name)"
        )
        parser.add_argument("--srs-secret", required=True, type=Path, help="file holding the SRS key")

    service = start_socket_service(
        "python -m postwerk.mailstack.tables",
        argv,
        client="Postfix",
        group_help="Postfix's mail_owner's",
        pool_size=4,
        arguments=arguments,
    )
    database = service.database
    tables = Tables(database, SrsKey(ensure_secret(service.args.srs_secret)), service.args.srs_domain)
    run_service(
        serve_unix(
            service.socket,
            protocol=lambda: SocketmapConnection(tables),
            group=service.group,
            mode=0o660,
            log=log,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
