"""Unix-socket servers of Postwerk's own mail services (policy, usage): bind with the right group and mode,
serve until SIGTERM or SIGINT, clean up. Imports nothing of ours."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import signal
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """End a connection from our side, whatever state the peer left it in."""
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


def _remove_stale(path: Path) -> None:
    # Only a socket left by a predecessor is removed, never a file someone put there.
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


async def serve_unix(
    path: Path,
    handler: Handler | None = None,
    *,
    protocol: Callable[[], asyncio.Protocol] | None = None,
    group: str | None,
    mode: int,
    log: logging.Logger,
    limit: int = 64 * 1024,
) -> None:
    """Serve `handler` (streams) or `protocol` (a protocol per connection) on the socket at `path` until the
    process is asked to stop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    # Bound under a restrictive umask, then opened to the group: no moment in which others may connect.
    previous = os.umask(0o177)
    try:
        if protocol is not None:
            server = await asyncio.get_running_loop().create_unix_server(protocol, path=str(path))
        elif handler is not None:
            server = await asyncio.start_unix_server(handler, path=str(path), limit=limit)
        else:
            raise ValueError("serve_unix needs a handler or a protocol")
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
