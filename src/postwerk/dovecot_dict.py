"""The server side of Dovecot 2.3's dict protocol (the `proxy:` dict client, lib-dict/dict-client.h): line
framing, its escaping and the lookup replies. Postwerk's usage dictionary (`postwerk.usage`) and its login
dictionary (`postwerk.logins`) both speak it; each decides what a line means.

Every request is one line; a lookup is `L<key>` (Dovecot 2.3.19 may append `\\t<user>`), answered
`O<value>`, `N` (not found) or `F<error>` (Dovecot then fails the operation as an internal error, which
is what an unreachable database must be, never "no such user").
"""

from __future__ import annotations

from collections.abc import Callable

from postwerk.unix_sockets import OrderedReplies, Reply

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


Responder = Callable[[str], Reply]


class DictProtocol(OrderedReplies[bytes]):
    """One Dovecot dict client connection: feeds each line (without its newline; fields still escaped) to
    `respond` and sends its reply, until Dovecot closes the connection. A reply may be an awaitable (a
    lookup in a thread, a write to wait for): Dovecot opens a connection per LDA and per login."""

    def __init__(self, respond: Responder) -> None:
        super().__init__()
        self._respond = respond
        self._buffer = b""

    def requests(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > READ_LIMIT:  # a line beyond Dovecot's own limit: end this connection only
            self.end()
            return []
        return lines

    def reply(self, request: bytes) -> Reply:
        return self._respond(request.decode("utf-8", "replace"))
