"""Postfix's policy delegation protocol (SMTPD_POLICY_README): a request is `name=value` lines ended by an
empty line; the answer is `action=...` and an empty line. One connection carries many requests.

The framing never trusts its input: lines and requests are bounded, bytes that are not UTF-8 are replaced,
and a request too large to keep is still answered (once, when it ends), so Postfix is never left waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from postwerk.unix_sockets import close_writer

MAX_LINE = 16 * 1024  # Postfix's longest attributes (client certificates' names, SASL names) fit
MAX_ATTRIBUTES = 200


@dataclass
class Request:
    attributes: dict[str, str] = field(default_factory=dict)
    malformed: bool = False  # too long, too many attributes, or a line that is no name=value

    def get(self, name: str) -> str:
        return self.attributes.get(name, "")


@dataclass
class RequestFramer:
    """Bytes in, complete requests out."""

    _buffer: bytearray = field(default_factory=bytearray)
    _current: Request = field(default_factory=Request)
    _discarding: bool = False  # inside a line that is too long: skip to its end

    def feed(self, data: bytes) -> list[Request]:
        self._buffer += data
        done: list[Request] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer.clear()
                    self._discarding = True
                    self._current.malformed = True
                return done
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self._discarding:
                self._discarding = False
                continue
            if not line:
                done.append(self._current)
                self._current = Request()
                continue
            self._add(line)

    def _add(self, line: bytes) -> None:
        request = self._current
        if len(line) > MAX_LINE or len(request.attributes) >= MAX_ATTRIBUTES:
            request.malformed = True
            return
        name, equals, value = line.partition(b"=")
        if not equals or not name:
            request.malformed = True
            return
        request.attributes[name.decode("ascii", "replace")] = value.decode("utf-8", "replace")


def answer(action: str) -> bytes:
    # A reply is one line: anything that could end it early is removed.
    clean = action.replace("\r", " ").replace("\n", " ")
    return f"action={clean}\n\n".encode()


READ_CHUNK = 64 * 1024


async def serve_requests(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    decide: Callable[[Request], Awaitable[str]],
) -> None:
    """Answer each request of one Postfix connection with `decide`'s action, in order, until it closes."""
    framer = RequestFramer()
    try:
        while data := await reader.read(READ_CHUNK):
            for request in framer.feed(data):
                writer.write(answer(await decide(request)))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        await close_writer(writer)
