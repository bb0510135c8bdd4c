"""The rest of the world for end-to-end tests: an SMTP server of the test's own on 127.0.0.1 (aiosmtpd), used
as the mail stack's relay host. It keeps every message with its envelope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

WAIT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    content: bytes


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

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
