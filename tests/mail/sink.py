"""The rest of the world for end-to-end tests: an SMTP server of the test's own on 127.0.0.1 (aiosmtpd), used
as the mail stack's relay host. It keeps every message with its envelope.

On command it defers (451) or rejects (550) chosen recipients at RCPT, and accepts them again: per
recipient, so the other tests sharing the sink are never affected (a refusal at RCPT also never makes
Postfix take the whole relay host for dead, as a refused connection or MAIL would)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

WAIT_TIMEOUT = 60.0
DEFER = "451 4.3.0 deferred by the test sink, try again later"
REJECT = "550 5.1.1 rejected by the test sink: no such user"


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    content: bytes


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.sink.rcpt_reply(address)
        if reply is None:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        sender = envelope.mail_from or ""
        # aiosmtpd keeps the null sender as written: "<>".
        self.sink.add(Received("" if sender == "<>" else sender, tuple(envelope.rcpt_tos), content))
        return "250 2.0.0 kept by the test sink"


class Sink:
    def __init__(self, port: int) -> None:
        self.port = port
        self._messages: list[Received] = []
        self._lock = threading.Lock()
        self._replies: dict[str, str] = {}  # recipient (lower case) -> RCPT reply, while commanded
        self._attempts: dict[str, list[str]] = {}  # recipient (lower case) -> RCPT replies given
        # hostname set: aiosmtpd's default does a (blocking, here failing) DNS lookup. It must differ from
        # the stack's own name, or Postfix reports that mail loops back to itself.
        self._controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=port,
            server_hostname="sink.postwerk.test",
            enable_SMTPUTF8=True,
            ready_timeout=10.0,
        )

    def defer(self, recipient: str) -> None:
        """From now on, answer RCPT for this recipient with a temporary 451."""
        with self._lock:
            self._replies[recipient.lower()] = DEFER

    def reject(self, recipient: str) -> None:
        """From now on, answer RCPT for this recipient with a permanent 550."""
        with self._lock:
            self._replies[recipient.lower()] = REJECT

    def accept(self, recipient: str) -> None:
        """Accept this recipient again (the default)."""
        with self._lock:
            self._replies.pop(recipient.lower(), None)

    def rcpt_reply(self, recipient: str) -> str | None:
        """The commanded reply for a recipient (None: accept); every RCPT is recorded as an attempt."""
        with self._lock:
            reply = self._replies.get(recipient.lower())
            self._attempts.setdefault(recipient.lower(), []).append(reply or "250")
            return reply

    def attempts(self, recipient: str) -> list[str]:
        """The replies the sink gave to RCPT for this recipient so far, oldest first ("250" accepted)."""
        with self._lock:
            return list(self._attempts.get(recipient.lower(), []))

    def add(self, message: Received) -> None:
        with self._lock:
            self._messages.append(message)

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def wait_for(
        self,
        match: Callable[[Received], bool],
        count: int = 1,
        timeout: float = WAIT_TIMEOUT,
        log: Any = None,
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            found = [message for message in self.messages if match(message)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                detail = log() if callable(log) else ""
                raise AssertionError(f"{len(found)} of {count} messages reached the sink\n{detail}")
            time.sleep(0.1)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
