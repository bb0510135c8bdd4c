"""Unix-socket servers of Postwerk's own mail services (policy, rate limit, usage, logins, socketmap tables,
milter): bind with the right group and mode, answer each connection's requests in order, serve until SIGTERM
or SIGINT, clean up. Imports nothing of ours."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import signal
import stat
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import uvloop

# An answer to one request: what to send now (text is sent as UTF-8), an awaitable of it (a lookup to wait
# for), or None (a request that gets no answer).
Reply = str | bytes | None | Awaitable[str | bytes | None]
RequestT = TypeVar("RequestT")
T = TypeVar("T")
log = logging.getLogger("postwerk")


class OrderedReplies(asyncio.Protocol, Generic[RequestT]):
    """One connection of a protocol whose requests are answered in order (Dovecot's dict protocol, Postfix's
    policy delegation): a subclass turns the bytes received into requests (`requests`) and each request into
    a reply (`reply`); a reply that must be waited for holds the ones after it, so answers go out in the
    order of the requests. A protocol rather than streams: Postfix and Dovecot open a connection per
    process, and the stream machinery (a task per connection, a coroutine per request) cost more than the
    answers (bench/RESULTS.md)."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._pending: deque[str | bytes | asyncio.Future[str | bytes | None]] = deque()
        self._ending = False
        self._ending_after_batch = False

    def requests(self, data: bytes) -> Iterable[RequestT]:
        raise NotImplementedError

    def reply(self, request: RequestT) -> Reply:
        raise NotImplementedError

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do all a Transport does without deriving from it.
        self._transport = cast(asyncio.Transport, transport)

    def end(self) -> None:
        """End this connection once the answers to the requests before now are out; later requests get
        none (a peer that quits, or one that sends what the protocol does not know)."""
        self._ending = True
        if not self._pending:
            self.close()

    def end_after_these(self) -> None:
        """For `requests`: `end` once the requests it returns this time are answered (what follows them in
        the bytes is not a request)."""
        self._ending_after_batch = True

    def data_received(self, data: bytes) -> None:
        for request in self.requests(data):
            if self._ending:
                return
            self._answer(self.reply(request))
        if self._ending_after_batch:
            self.end()

    def _answer(self, answer: Reply) -> None:
        if answer is None:
            return
        if isinstance(answer, (str, bytes)):
            if self._pending:
                self._pending.append(answer)
            else:
                self._send(answer)
            return
        waiting = asyncio.ensure_future(answer)
        self._pending.append(waiting)
        waiting.add_done_callback(self._send_ready)

    def _send_ready(self, _done: object = None) -> None:
        while self._pending:
            head = self._pending[0]
            if isinstance(head, (str, bytes)):
                answer: str | bytes | None = head
            elif not head.done():
                return
            elif head.cancelled() or head.exception() is not None:
                # Answering the next request in its place would hand the peer one answer for another: the
                # connection ends (the peer treats that as a temporary failure).
                if not head.cancelled():
                    log.error(
                        "an answer failed (%s): closing the connection", type(head.exception()).__name__
                    )
                self._pending.clear()
                self.close()
                return
            else:
                answer = head.result()
            self._pending.popleft()
            if answer is not None:
                self._send(answer)
        if self._ending:
            self.close()

    def _send(self, answer: str | bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer.encode() if isinstance(answer, str) else answer)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _remove_stale(path: Path) -> None:
    # Only a socket left by a predecessor is removed, never a file someone put there.
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


async def serve_unix(
    path: Path,
    *,
    protocol: Callable[[], asyncio.Protocol],
    group: str | None,
    mode: int,
    log: logging.Logger,
) -> None:
    """Serve `protocol` (one per connection) on the socket at `path` until the process is asked to stop.
    Protocols, not streams: no task per connection, and nothing left to cancel (and, in Python 3.11, to be
    logged as an error with its traceback) when the service stops with connections open."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    # Bound under a restrictive umask, then opened to the group: no moment in which others may connect.
    previous = os.umask(0o177)
    try:
        server = await asyncio.get_running_loop().create_unix_server(protocol, path=str(path))
    finally:
        os.umask(previous)
    if group is not None:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    path.chmod(mode)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("listening on %s", path)
    async with server:
        await stop.wait()
    _remove_stale(path)
    log.info("stopped")


def run_service(service: Coroutine[Any, Any, T]) -> T:
    """Run a service (`serve_unix`, or a coroutine around it) to its end on uvloop's event loop. Postfix and
    Dovecot open a connection per process or per delivery (every dovecot-lda to the usage dictionary), and
    asyncio's own loop does in Python what libuv does in C for each: accepting it, a task per accepted
    connection, a transport, reading, writing, closing (bench/mail_lookups.py: the usage dictionary per
    delivery, the policy service per request). The protocols are the same on either loop."""
    return uvloop.run(service)
