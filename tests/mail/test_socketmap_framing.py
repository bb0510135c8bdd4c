"""The socketmap server's framing (`postwerk.mailstack.tables.SocketmapConnection`), on a real unix socket:
netstrings in any pieces, answers in order, a request that is no netstring ends the connection after the
answers before it. The maps themselves are tested through Postfix (tests/mail) and in test_lookup_queries."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from postwerk.mailstack.tables import SocketmapConnection
from tests.conftest import unix_exchange


class _Maps:
    """Answers `echo KEY` with KEY; knows no other map."""

    def lookup(self, name: str, key: str) -> str | None:
        if name != "echo":
            raise KeyError(name)
        return None if key == "missing" else key


def _netstring(text: str) -> bytes:
    data = text.encode()
    return str(len(data)).encode() + b":" + data + b","


def _talk(path: Path, chunks: list[bytes]) -> bytes:
    return unix_exchange(path, chunks, end_sending=True)


def _served(path: Path, chunks: list[bytes]) -> bytes:
    async def run() -> bytes:
        maps: Any = _Maps()
        server = await asyncio.get_running_loop().create_unix_server(
            lambda: SocketmapConnection(maps), path=str(path)
        )
        async with server:
            return await asyncio.to_thread(_talk, path, chunks)

    return asyncio.run(run())


def test_lookups_in_pieces_are_answered_in_order(tmp_path: Path) -> None:
    requests = _netstring("echo пошта@укр.нет") + _netstring("echo missing") + _netstring("other x")
    pieces = [requests[index : index + 3] for index in range(0, len(requests), 3)]
    received = _served(tmp_path / "maps.sock", pieces)
    assert received == _netstring("OK пошта@укр.нет") + _netstring("NOTFOUND ") + _netstring(
        "PERM no such map"
    )


def test_a_request_that_is_no_netstring_ends_the_connection_after_the_answers_before_it(
    tmp_path: Path,
) -> None:
    received = _served(tmp_path / "maps.sock", [_netstring("echo a") + b"5:echo b;" + _netstring("echo c")])
    assert received == _netstring("OK a")
    assert _served(tmp_path / "other.sock", [b"12345678:"]) == b""  # a length longer than any request
