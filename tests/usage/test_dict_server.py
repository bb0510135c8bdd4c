"""The usage dictionary with the very lines Dovecot 2.3.19's quota_clone sends (recorded from its LDA), over
a real unix socket: replies as Dovecot expects them, usage reported per mailbox, a burst coalesced."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from postwerk.usage.dict_server import DictConnection, Usage, UsageCollector, handle, unescape

MAILBOX = "18c2c256-00c4-4aa8-a431-b606b9cf87e3"
# As recorded: HELLO without a user (protocol 3.2), the user with BEGIN, a synchronous commit.
RECORDED = (
    f"H3\t2\t0\t\tusage\nB1\t{MAILBOX}\nS1\tpriv/quota/storage\t338\nS1\tpriv/quota/messages\t4\nC1\n"
).encode()


def _client(path: Path, payload: bytes, expected: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(payload)
        received = b""
        while len(received) < len(expected):
            chunk = client.recv(4096)
            if not chunk:
                break
            received += chunk
    return received


def test_quota_clone_lines_over_a_socket(tmp_path: Path) -> None:
    written: list[dict[str, int]] = []

    def write(batch: Usage) -> None:
        written.append({mailbox: value for mailbox, (value, _) in batch.items()})

    async def scenario() -> bytes:
        collector = UsageCollector(write)
        flusher = asyncio.create_task(collector.run_flusher())
        path = tmp_path / "usage.sock"
        server = await asyncio.start_unix_server(lambda r, w: handle(collector, r, w), path=str(path))
        async with server:
            payload = RECORDED + b"B2\t" + MAILBOX.encode() + b"\nS2\tpriv/quota/storage\t400\nD2\n"
            replies = await asyncio.to_thread(_client, path, payload, b"O1\nAO2\n")
            for _ in range(50):
                if written:
                    break
                await asyncio.sleep(0.05)
        flusher.cancel()
        return replies

    assert asyncio.run(scenario()) == b"O1\nAO2\n"
    assert written == [{MAILBOX: 400}]  # the burst is one write, the latest value wins


def test_odd_lines_are_answered_or_ignored() -> None:
    reported: list[tuple[str, int]] = []

    class Collector:
        def report(self, mailbox_id: str, usage_bytes: int) -> None:
            reported.append((mailbox_id, usage_bytes))

    connection = DictConnection(Collector())  # type: ignore[arg-type]
    assert connection.line("H3\t2\t0\tfallback-user\tusage") is None
    assert connection.line("Lpriv/quota/storage") == "N\n"
    assert connection.line("B7") is None  # no user with BEGIN: HELLO's
    assert connection.line("S7\tpriv/quota/storage\tnot a number") is None
    assert connection.line("C7") == "O7\n"
    assert connection.line("B8") is None
    assert connection.line("S8\tpriv/quota/storage\t12") is None
    assert connection.line("R8") is None  # rolled back: nothing
    assert connection.line("C9") == "O9\n"  # unknown transaction: answered, nothing stored
    assert connection.line("B10\tbox") is None
    assert connection.line("S10\tpriv/quota/storage\t99") is None
    assert connection.line("C10") == "O10\n"
    assert connection.line("") is None
    assert connection.line("X") is None
    assert reported == [("box", 99)]
    assert unescape("a\x01tb\x01nc\x011") == "a\tb\nc\x01"
