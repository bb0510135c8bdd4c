"""The server side of Dovecot 2.3's dict protocol (the `proxy:` dict client, lib-dict/dict-client.h): line
framing, its escaping and the lookup replies. Postwerk's usage dictionary (`postwerk.usage`) and its login
dictionary (`postwerk.logins`) both speak it; each decides what a line means.

Every request is one line; a lookup is `L<key>` (Dovecot 2.3.19 may append `\\t<user>`), answered
`O<value>`, `N` (not found) or `F<error>` (Dovecot then fails the operation as an internal error, which
is what an unreachable database must be, never "no such user").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from postwerk.unix_sockets import close_writer

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


Responder = Callable[[str], Awaitable[str | None]]


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, respond: Responder
) -> None:
    """Feed each line (without its newline; fields still escaped) to `respond` and send its reply, until
    Dovecot closes the connection. One line at a time: replies must come in the order of the requests."""
    try:
        while raw := await reader.readline():
            reply = await respond(raw.rstrip(b"\n").decode("utf-8", "replace"))
            if reply is not None:
                writer.write(reply.encode())
                await writer.drain()
    except (ConnectionError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
        pass  # a line beyond the limit or a client gone: end this connection only
    finally:
        await close_writer(writer)
