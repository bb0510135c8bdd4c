"""Postfix's policy delegation protocol (SMTPD_POLICY_README): a request is `name=value` lines ended by an
empty line; the answer is `action=...` and an empty line. One connection carries many requests.

The framing never trusts its input: lines and requests are bounded, bytes that are not UTF-8 are replaced,
and a request too large to keep is still answered (once, when it ends), so Postfix is never left waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from postwerk.unix_sockets import OrderedReplies, Reply

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

    _buffer: bytes = b""
    _current: Request = field(default_factory=Request)
    _discarding: bool = False  # inside a line that is too long: skip to its end

    def feed(self, data: bytes) -> list[Request]:
        *lines, rest = (self._buffer + data).split(b"\n")
        if len(rest) > MAX_LINE:
            rest = b""
            self._discarding = True
            self._current.malformed = True
        self._buffer = rest
        done: list[Request] = []
        for line in lines:
            if self._discarding:  # the end of the line that was too long
                self._discarding = False
                continue
            if line.endswith(b"\r"):
                line = line.rstrip(b"\r")
            if not line:
                done.append(self._current)
                self._current = Request()
                continue
            self._add(line)
        return done

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


def answer(action: str) -> str:
    # A reply is one line: anything that could end it early is removed.
    clean = action.replace("\r", " ").replace("\n", " ")
    return f"action={clean}\n\n"


# What a service decides for a request: the action at once, or once it has been waited for.
Decide = Callable[[Request], str | Awaitable[str]]


class PolicyProtocol(OrderedReplies[Request]):
    """One Postfix connection: each request answered with `decide`'s action, in order, until it closes
    (smtpd keeps its connection for many requests)."""

    def __init__(self, decide: Decide) -> None:
        super().__init__()
        self._decide = decide
        self._framer = RequestFramer()

    def requests(self, data: bytes) -> list[Request]:
        return self._framer.feed(data)

    def reply(self, request: Request) -> Reply:
        action = self._decide(request)
        if isinstance(action, str):
            return answer(action)
        return _answer_when_decided(action)


async def _answer_when_decided(action: Awaitable[str]) -> str:
    return answer(await action)
