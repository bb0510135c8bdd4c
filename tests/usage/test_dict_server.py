"""The usage dictionary with the lines Dovecot 2.3.19's quota plugin (`dict` backend) sends, over a real
unix socket: increments and counted totals per mailbox, commits answered once stored (a burst in few
writes), and a failed write answered "not found" so that Dovecot counts the mailbox and sends its total."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from postwerk.usage import dict_server
from postwerk.usage.dict_server import (
    BATCH_COMMITS,
    Changes,
    DictConnection,
    UsageChange,
    UsageCollector,
    protocol_factory,
)
from tests.conftest import unix_exchange

MAILBOX = "18c2c256-00c4-4aa8-a431-b606b9cf87e3"
HELLO = "H3\t2\t0\t\tusage\n"


def _delivery(transaction: int, size: int) -> str:
    # What the LDA sends after a delivery: the increments, then an asynchronous commit.
    return (
        f"B{transaction}\t{MAILBOX}\nA{transaction}\tpriv/quota/storage\t{size}\n"
        f"A{transaction}\tpriv/quota/messages\t1\nD{transaction}\n"
    )


def _count(transaction: int, total: int) -> str:
    # What Dovecot sends after counting a mailbox: unset, then set, both keys.
    return (
        f"B{transaction}\t{MAILBOX}\nU{transaction}\tpriv/quota/storage\nU{transaction}\tpriv/quota/messages\n"
        f"S{transaction}\tpriv/quota/storage\t{total}\nS{transaction}\tpriv/quota/messages\t3\nD{transaction}\n"
    )


def _client(path: Path, payload: str, replies: int) -> bytes:
    return unix_exchange(path, payload.encode(), until=lambda received: received.count(b"\n") >= replies)


def _serve(tmp_path: Path, write: object, payloads: list[tuple[str, int]]) -> list[bytes]:
    async def scenario() -> list[bytes]:
        collector = UsageCollector(write)  # type: ignore[arg-type]
        writer = asyncio.create_task(collector.run_writer())
        path = tmp_path / "usage.sock"
        server = await asyncio.get_running_loop().create_unix_server(
            protocol_factory(collector), path=str(path)
        )
        async with server:
            replies = await asyncio.gather(
                *(asyncio.to_thread(_client, path, payload, count) for payload, count in payloads)
            )
        writer.cancel()
        return list(replies)

    return asyncio.run(scenario())


def test_deliveries_and_counts_are_stored_before_they_are_answered(tmp_path: Path) -> None:
    written: list[dict[str, tuple[int | None, int]]] = []

    def write(batch: Changes) -> None:
        written.append({mailbox: (change.total, change.delta) for mailbox, change in batch.items()})

    payload = HELLO + _delivery(1, 338) + _delivery(2, 400) + _count(3, 900) + _delivery(4, 50)
    (replies,) = _serve(tmp_path, write, [(payload, 4)])
    assert replies == b"AO1\nAO2\nAO3\nAO4\n"
    stored: tuple[int | None, int] = (None, 0)
    for batch in written:
        total, delta = batch[MAILBOX]
        stored = (total, delta) if total is not None else (stored[0], stored[1] + delta)
    assert stored == (900, 50)  # the count replaces what came before it; what came after adds to it
    assert 1 <= len(written) <= 4  # a burst is a few writes, not one per line


def test_a_failed_write_is_answered_not_found_and_a_total_is_kept() -> None:
    attempts: list[dict[str, UsageChange]] = []

    def write(batch: Changes) -> None:
        attempts.append(dict(batch))
        if len(attempts) == 1:
            raise OSError("database away")

    async def scenario() -> tuple[str | None, str | None]:
        collector = UsageCollector(write)
        connection = DictConnection(collector)
        for line in (HELLO + _delivery(1, 338) + _count(2, 900)).splitlines():
            reply = connection.line(line)
            if line.startswith("D1"):
                delivery = reply
            elif line.startswith("D2"):
                count = reply
        assert not isinstance(delivery, str) and not isinstance(count, str)
        assert delivery is not None and count is not None
        failed = await collector.write()
        answers = (await delivery, await count)  # type: ignore[misc]
        assert not failed
        assert await collector.write()  # the total again; the increment is not
        return answers

    assert asyncio.run(scenario()) == ("AN1\n", "AN2\n")
    assert attempts[0] == {MAILBOX: UsageChange(900, 0)}
    assert attempts[1] == {MAILBOX: UsageChange(900, 0)}


def test_odd_lines_are_answered_or_ignored() -> None:
    async def scenario() -> list[object]:
        collector = UsageCollector(lambda batch: None)
        connection = DictConnection(collector)
        replies = [
            connection.line(line)
            for line in (
                "H3\t2\t0\tfallback-user\tusage",
                "Lpriv/quota/storage",
                "B7",  # no user with BEGIN: HELLO's
                "S7\tpriv/quota/storage\tnot a number",
                "C7",
                "B8\tbox",
                "A8\tpriv/quota/storage\t12",
                "R8",  # rolled back: nothing
                "C9",  # unknown transaction: answered, nothing stored
                "",
                "X",
            )
        ]
        return replies

    assert asyncio.run(scenario()) == [None, "N\n", None, None, "O7\n", None, None, None, "O9\n", None, None]


def test_changes_combine_in_order() -> None:
    assert UsageChange(delta=5).then(UsageChange(delta=-2)) == UsageChange(None, 3)
    assert UsageChange(delta=5).then(UsageChange(100)) == UsageChange(100, 0)
    assert UsageChange(100).then(UsageChange(delta=7)) == UsageChange(100, 7)


def test_a_full_batch_is_written_without_waiting_out_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits wait for others to share their write, but no longer than it takes BATCH_COMMITS of them to
    come: at high rates the LDAs waiting for their answers must not pile up."""
    monkeypatch.setattr(dict_server, "GATHER_WINDOW", 60.0)  # far beyond the clients' 10 s timeout
    written: list[int] = []
    payload = HELLO + "".join(_delivery(n, 100) for n in range(dict_server.BATCH_COMMITS))
    started = time.monotonic()
    (replies,) = _serve(tmp_path, lambda batch: written.append(len(batch)), [(payload, BATCH_COMMITS)])
    assert replies.count(b"\n") == BATCH_COMMITS and b"N" not in replies
    assert time.monotonic() - started < 10 and written == [1]  # one mailbox, one write
