"""The submission milter: for each message, the header `From:` check at the end of the headers, the DKIM
signature at the end of the body.

- Who sent it: Postfix's macro `{auth_authen}` (sent with MAIL FROM), the SASL login name, which on
  Postwerk's submission services is the account's id (a mailbox's or a delivery box's; see
  `postwerk.domain.submission`).
- May it: the `From:` address (`postwerk.domain.header_from`) must be one the account owns by the same rule
  as the envelope sender (`postwerk.domain.submission.sender_owners`): a mailbox sends as its own address or
  one whose forwardAddresses deliver to it, a delivery box as any address of its project's domains.
  Otherwise `553 5.7.1` with the reason, and Postfix refuses the message at the end of DATA.
- The signature: with the active key of the From: domain, read from the database for every message (one
  index probe), so a new domain or a rotated key signs the very next message on every mail node, with no
  restart and no cache to go stale. A domain with no key yet (added before DKIM, records never read) sends
  unsigned.

Fails closed: a database that does not answer, or a signature that cannot be made, answers `451 4.3.0`
(the client tries again later) rather than letting mail out unchecked or unsigned; so does Postfix itself
when the milter is unreachable (`milter_default_action = tempfail`, Postfix's default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from postwerk.dkim import protocol
from postwerk.dkim.protocol import ProtocolError
from postwerk.domain.header_from import HeaderRefused, header_from
from postwerk.domain.submission import SenderLookup, sender_owners
from postwerk.store.dkim_keys import SigningKey
from postwerk.unix_sockets import OrderedReplies, Reply

log = logging.getLogger("postwerk.dkim")

LOGIN_MACRO = "auth_authen"
NOT_LOGGED_IN = "530 5.7.0 authentication required"
TEMPORARY = "451 4.3.0 the sending checks are not available right now; try again later"
SIGN_TIMEOUT = 60.0
MAX_MESSAGE = 256 * 1024 * 1024  # beyond any message_size_limit Postfix would let through


def not_owned(address: str) -> str:
    shown = f"<{address}>" if address.isascii() else "the From: address"
    return (
        f"553 5.7.1 this login may not send as {shown} (header From:): a mailbox sends as its own address"
        " or one that forwards to it, a delivery box as any address of its project's domains"
    )


@dataclass(frozen=True)
class Verdict:
    """What the end of the headers decided: refuse with `reply`, or go on (and sign with `key`)."""

    reply: str | None = None
    key: SigningKey | None = None


@dataclass(frozen=True)
class Lookups:
    """The store's answers for one message, on one read connection (see `__main__`)."""

    lookup: SenderLookup
    signing_key: Callable[[str], SigningKey | None]


# Runs `decide` with the store's lookups on one read connection (blocking).
Reading = Callable[[Callable[[Lookups], Verdict]], Verdict]


def decide(login: str | None, from_values: Sequence[str], lookups: Lookups) -> Verdict:
    if not login:
        return Verdict(NOT_LOGGED_IN)
    try:
        address = header_from(from_values)
    except HeaderRefused as refused:
        return Verdict(refused.reply)
    if login not in sender_owners(address.ascii_route, lookups.lookup):
        return Verdict(not_owned(address.ascii_route))
    return Verdict(key=lookups.signing_key(address.domain.ascii))


@dataclass
class _Message:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    verdict: Verdict | None = None


class SubmissionMilter:
    def __init__(
        self,
        reading: Reading,
        *,
        sign: Callable[[Sequence[tuple[bytes, bytes]], bytes, SigningKey], bytes],
    ) -> None:
        self._reading = reading
        self._sign = sign

    def _verdict_blocking(self, login: str | None, headers: Sequence[tuple[bytes, bytes]]) -> Verdict:
        # Bytes that are no UTF-8 can only be in a display name of a valid address (never looked at); in
        # the address itself they name nobody's address and are refused as such.
        from_values = [value.decode("utf-8", "replace") for name, value in headers if name.lower() == b"from"]
        return self._reading(lambda lookups: decide(login, from_values, lookups))

    def verdict(self, login: str | None, headers: Sequence[tuple[bytes, bytes]]) -> Verdict:
        # On the event loop: a thread hop costs more than the lookups, and the mail services' databases
        # bound every lookup in time (service_main.mail_service_database).
        try:
            return self._verdict_blocking(login, headers)
        except Exception as error:  # the store away or a bug: never let the message pass unchecked
            log.error("sender check failed (%s: %s): answering 451", type(error).__name__, error)
            return Verdict(TEMPORARY)

    async def _signature(self, message: _Message) -> bytes | None:
        verdict = message.verdict
        if verdict is None or verdict.key is None:
            return None
        return await asyncio.wait_for(
            asyncio.to_thread(self._sign, message.headers, bytes(message.body), verdict.key),
            timeout=SIGN_TIMEOUT,
        )

    def protocol(self) -> MilterConnection:
        """A connection of Postfix's (for `serve_unix`)."""
        return MilterConnection(self)

    def answer(self, verdict: Verdict, macros: Mapping[str, str]) -> bytes:
        if verdict.reply is None:
            return protocol.encode(protocol.CONTINUE)
        log.info("refused (queue id %s): %s", macros.get("i", "?"), verdict.reply)
        return protocol.reply_code(verdict.reply)

    async def end_of_message(self, message: _Message, macros: Mapping[str, str]) -> bytes:
        if message.verdict is None:  # the MTA skipped the end of the headers: judge the message now
            message.verdict = self.verdict(macros.get(LOGIN_MACRO), message.headers)
        if message.verdict.reply is not None:
            return self.answer(message.verdict, macros)
        try:
            value = await self._signature(message)
        except Exception as error:
            log.error("signing failed (%s: %s): answering 451", type(error).__name__, error)
            return protocol.reply_code(TEMPORARY)
        if value is None:
            log.info("queue id %s: no DKIM key for the From: domain, sent unsigned", macros.get("i", "?"))
            return protocol.encode(protocol.CONTINUE)
        key = message.verdict.key
        assert key is not None
        log.debug("queue id %s: signed for %s, selector %s", macros.get("i", "?"), key.domain, key.selector)
        return protocol.insert_header(0, b"DKIM-Signature", value) + protocol.encode(protocol.CONTINUE)


class MilterConnection(OrderedReplies[protocol.Packet]):
    """One connection of Postfix's milter client: its packets in, the answers out in order (the signature
    at the end of a message is made in a thread and holds the answers after it). A packet that no MTA sends
    ends the connection after the answers before it."""

    def __init__(self, milter: SubmissionMilter) -> None:
        super().__init__()
        self._milter = milter
        self._buffer = b""
        self._agreed_steps = 0
        self._macros: dict[str, str] = {}
        self._message = _Message()
        self._size = 0

    def requests(self, data: bytes) -> list[protocol.Packet]:
        self._buffer += data
        packets: list[protocol.Packet] = []
        try:
            while (found := protocol.first_packet(self._buffer)) is not None:
                packet, self._buffer = found
                packets.append(packet)
        except ProtocolError as error:
            log.warning("closing a milter connection: %s", error)
            self._buffer = b""
            self.end_after_these()
        return packets

    def reply(self, packet: protocol.Packet) -> Reply:
        try:
            return self._reply(packet)
        except ProtocolError as error:
            log.warning("closing a milter connection: %s", error)
            self.end()
            return None

    def _reply(self, packet: protocol.Packet) -> Reply:
        command, message = packet.command, self._message
        if command == protocol.QUIT:
            self.end()
            return None
        if command == protocol.OPTION_NEGOTIATION:
            answer, self._agreed_steps = protocol.negotiate(packet.data)
            return answer
        if command == protocol.MACRO:
            self._macros.update(protocol.macros(packet.data))
            return None
        if command == protocol.QUIT_NEW_CONNECTION:
            self._macros, self._message, self._size = {}, _Message(), 0
            return None
        if command in (protocol.ABORT, protocol.MAIL):
            # A new message: what belonged to the last one goes (MAIL's own macros came just before it).
            self._message, self._size = _Message(), 0
            if command == protocol.MAIL:
                return protocol.encode(protocol.CONTINUE)
            for macro in (LOGIN_MACRO, "i", "mail_addr"):
                self._macros.pop(macro, None)
            return None
        if command == protocol.HEADER:
            name, value = protocol.header(packet.data)
            self._size += len(name) + len(value)
            message.headers.append((name, value))
            return (
                None if self._agreed_steps & protocol.NO_REPLY_HEADERS else protocol.encode(protocol.CONTINUE)
            )
        if command == protocol.END_OF_HEADERS:
            message.verdict = self._milter.verdict(self._macros.get(LOGIN_MACRO), message.headers)
            return self._milter.answer(message.verdict, self._macros)
        if command == protocol.BODY:
            self._size += len(packet.data)
            if self._size > MAX_MESSAGE:
                raise ProtocolError("message larger than any Postfix would accept")
            message.body += packet.data
            return protocol.encode(protocol.CONTINUE)
        if command == protocol.END_OF_BODY:
            message.body += packet.data
            self._message, self._size = _Message(), 0
            return self._milter.end_of_message(message, dict(self._macros))
        return protocol.encode(protocol.CONTINUE)  # CONNECT, HELO, RCPT, DATA, UNKNOWN when sent after all
