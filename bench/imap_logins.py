"""IMAP logins per second through Postwerk's passdb (Dovecot's dict passdb asking Postwerk's login
dictionary, `postwerk.logins`, on SQLite), as a ratio to the same Argon2id hashes in a passwd-file (the
floor: the same Dovecot configuration without Postwerk), for three Argon2id parameter sets: Postwerk's own
(t=2, m=19 MiB, p=1) and a cheaper and a dearer one.

    .venv/bin/python bench/imap_logins.py [--quick] [--seconds S] [--rounds N] [--clients C]

A login is: connect to the IMAP port, `AUTHENTICATE PLAIN` with the initial response, wait for the tagged
OK (Dovecot has then verified the hash, looked the user up and started its imap process), `LOGOUT`. From
127.0.0.1 to 127.0.0.1 Dovecot counts the connection as secured, so no TLS handshake is in the figures.
Both stacks run side by side; each measurement alternates between them (median of the rounds).
Needs root, Postfix and Dovecot (`make mail-deps`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import statistics
import sys
import time
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from mail_stacks import (
    Box,
    bench_folder,
    bulk_load,
    floor_stack,
    postwerk_stack,
    settings_for,
    sqlite_database,
)

from postwerk.domain.passwords import SCHEME_PREFIX
from postwerk.settings import split_host_port

DOMAIN = "logins.bench.example"
PASSWORD = "bench password"
USERS_PER_SET = 50
STEP_TIMEOUT = 30.0
TARGET = 0.8


@dataclass(frozen=True)
class Parameters:
    label: str
    time_cost: int
    memory_kib: int

    def hash(self) -> str:
        hasher = PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=1,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        return SCHEME_PREFIX + hasher.hash(PASSWORD)

    def verify_ms(self) -> float:
        """One verify in this process (argon2-cffi), for comparison with the login rate."""
        hasher = PasswordHasher()
        hashed = self.hash().removeprefix(SCHEME_PREFIX)
        started = time.perf_counter()
        for _ in range(5):
            hasher.verify(hashed, PASSWORD)
        return (time.perf_counter() - started) / 5 * 1000


SETS = (
    Parameters("t=1 m=8MiB", 1, 8 * 1024),
    Parameters("t=2 m=19MiB (Postwerk)", 2, 19 * 1024),
    Parameters("t=3 m=64MiB", 3, 64 * 1024),
)


async def _until_tagged(reader: asyncio.StreamReader, tag: bytes) -> bytes:
    while True:
        line = await asyncio.wait_for(reader.readline(), STEP_TIMEOUT)
        if not line:
            raise ConnectionError("connection closed")
        if line.startswith(tag + b" "):
            return line


async def login_once(host: str, port: int, address: str) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), STEP_TIMEOUT)
    try:
        await asyncio.wait_for(reader.readline(), STEP_TIMEOUT)  # greeting
        initial = base64.b64encode(f"\0{address}\0{PASSWORD}".encode())
        writer.write(b"a AUTHENTICATE PLAIN " + initial + b"\r\n")
        reply = await _until_tagged(reader, b"a")
        if not reply.startswith(b"a OK"):
            raise RuntimeError(f"login refused: {reply!r}")
        writer.write(b"b LOGOUT\r\n")
        await _until_tagged(reader, b"b")
    finally:
        writer.close()


async def _measure(listener: str, addresses: list[str], clients: int, seconds: float) -> float:
    host, port = split_host_port(listener)
    rotation = itertools.cycle(addresses)
    deadline = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await login_once(host, port, next(rotation))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def rate(listener: str, addresses: list[str], clients: int, seconds: float) -> float:
    return asyncio.run(_measure(listener, addresses, clients, seconds))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s per measurement, one round")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent IMAP clients")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the mail servers need root", file=sys.stderr)
        return 2
    seconds, rounds = (3.0, 1) if args.quick else (args.seconds, args.rounds)
    hashes = {parameters: parameters.hash() for parameters in SETS}
    accounts = [
        (f"s{index}-u{number}@{DOMAIN}", hashes[parameters])
        for index, parameters in enumerate(SETS)
        for number in range(USERS_PER_SET)
    ]
    results: dict[Parameters, tuple[list[float], list[float]]] = {p: ([], []) for p in SETS}
    with bench_folder("postwerk-bench-logins-") as folder:
        postwerk_settings = settings_for(folder / "postwerk")
        with sqlite_database(postwerk_settings) as engine:
            boxes = bulk_load(engine, accounts)
        floor_boxes = [Box(b.address, f"floor-{n:04d}", b.password_hash) for n, b in enumerate(boxes)]
        with (
            postwerk_stack(postwerk_settings) as postwerk,
            floor_stack(settings_for(folder / "floor"), floor_boxes, [DOMAIN]) as floor,
        ):
            for index, parameters in enumerate(SETS):
                logins = [b.address for b in boxes if b.address.startswith(f"s{index}-")]
                for stack in (postwerk, floor):  # warm-up: the login processes and every mailbox exist
                    rate(stack.settings.imap, logins, args.clients, 1.0)
                for _ in range(rounds):
                    results[parameters][0].append(rate(postwerk.settings.imap, logins, args.clients, seconds))
                    results[parameters][1].append(rate(floor.settings.imap, logins, args.clients, seconds))
                print(f"  {parameters.label}: measured", flush=True)
    print(
        f"\nIMAP logins/s, {args.clients} clients, {seconds:.0f} s x {rounds} round(s) each, "
        f"{os.cpu_count()} CPUs; median"
    )
    print(
        f"{'Argon2id':<24}{'verify ms':>10}{'Postwerk':>10}{'passwd-file':>13}  "
        f"ratio (min-max)        target >= {TARGET}"
    )
    for parameters in SETS:
        ours, floors = results[parameters]
        ratios = [a / b for a, b in zip(ours, floors, strict=True)]
        ratio = statistics.median(ours) / statistics.median(floors)
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(
            f"{parameters.label:<24}{parameters.verify_ms():>10.1f}{statistics.median(ours):>10.1f}"
            f"{statistics.median(floors):>13.1f}  {ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
            f"{'':<10}{verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
