"""The server side of Dovecot 2.3's dict protocol (the `proxy:` dict client, lib-dict/dict-client.h): line
framing, its escaping and the lookup replies. Postwerk's usage dictionary (`postwerk.usage`) and its login
dictionary (`postwerk.logins`) both speak it; each decides what a line means.

Every request is one line; a lookup is `L<key>` (Dovecot 2.3.19 may append `\\t<user>`), answered
`O<value>`, `N` (not found) or `F<error>` (Dovecot then fails the operation as an internal error, which
is what an unreachable database must be, never "no such user").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

READ_LIMIT = 64 * 1024  # Dovecot's own DICT_CLIENT_MAX_LINE_LENGTH

NOT_FOUND = "N\n"

_UNESCAPES = {"1": "\x01", "t": "\t", "n": "\n", "r": "\r"}
_ESCAPES = str.maketrans({"\x01": "\x011", "\t": "\x01t", "\n": "\x01n", "\r": "\x01r"})


def unescape(text: str) -> str:
    """Dovecot's dict escaping: \\001 followed by 1, t, n or r stands for \\001, tab, newline, CR."""
    if "\x01" not in text:
        return text
    out = []
    characters = iter(text)
    for character in characters:
        if character != "\x01":
            out.append(character)
            continue
        following = next(characters, "")
        out.append(_UNESCAPES.get(following, following))
    return "".join(out)


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


def found(value: str) -> str:
    return f"O{escape(value)}\n"


def failed(reason: str) -> str:
    # The reason reaches Dovecot's log: callers pass a kind of error, never data.
    return f"F{escape(reason)}\n"


Reply = str | None | Awaitable[str | None]
Responder = Callable[[str], Reply]


class DictProtocol(asyncio.Protocol):
    """One Dovecot dict client connection: feeds each line (without its newline; fields still escaped) to
    `respond` and sends its reply, until Dovecot closes the connection. A reply may be an awaitable (a
    lookup in a thread, a write to wait for); replies still go out in the order of the requests, as the
    protocol wants. A protocol rather than streams: Dovecot opens a connection per LDA and per login, and
    the stream machinery (a task per connection, a coroutine per line) cost more than the answers."""

    def __init__(self, respond: Responder) -> None:
        self._respond = respond
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._replies: deque[str | asyncio.Future[str | None]] = deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > READ_LIMIT:  # a line beyond Dovecot's own limit: end this connection only
            self._close()
            return
        for raw in lines:
            reply = self._respond(raw.decode("utf-8", "replace"))
            if reply is None:
                continue
            if isinstance(reply, str):
                if not self._replies:
                    self._send(reply)
                else:
                    self._replies.append(reply)
                continue
            waiting = asyncio.ensure_future(reply)
            self._replies.append(waiting)
            waiting.add_done_callback(self._send_ready)

    def _send_ready(self, _done: object = None) -> None:
        while self._replies:
            head = self._replies[0]
            if isinstance(head, str):
                text: str | None = head
            elif head.done():
                text = None if head.cancelled() or head.exception() is not None else head.result()
            else:
                return
            self._replies.popleft()
            if text is not None:
                self._send(text)

    def _send(self, text: str) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(text.encode())

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
