"""The rate-limit policy service alone (`postwerk.ratelimit`), driven over its unix socket the way Postfix's
submission smtpd processes drive it: one END-OF-MESSAGE request per message (`sasl_username` = an account's
id, `recipient_count=1`), on `--clients` connections at once, each for a random one of `--accounts`
mailboxes bulk-loaded straight into the tables, every one of which already has a window of counts (the
steady state of an installation whose accounts all sent mail in the last hour); one account in ten is a
delivery box. Measured for:

  floor     the same protocol server answering DUNNO without the database (what the framing, the thread
            hop and the socket cost; baseline)
  sqlite    Postwerk's service on SQLite (the data folder's database file, WAL)
  postgres  the same on PostgreSQL (127.0.0.1:5432, a fresh schema)

    .venv/bin/python bench/ratelimit_policy.py [--quick] [--accounts N] [--requests N] [--clients N]
        [--database sqlite|postgres|both] [--explain]

Prints requests per second, latency (p50, p99), and CPU per request of the service process and, on
PostgreSQL, of the database's backends serving it (from /proc, by process id; the service's connections
are found by their application_name). `--explain` prints the plan of each statement at that size, with
the planner's own choice (no seqscan switched off). Every answer must be DUNNO (the tier is the largest and
no account gets near it): anything else is reported. Needs, for `postgres`, the PostgreSQL server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulk_rows import analyze, delivery_box_row, domain_row, mailbox_row, project_row
from sqlalchemy import Engine, insert, text

from postwerk.domain.rate_limits import tier_id
from postwerk.domain.sending_rate import WINDOW_SLOTS, Window, slot_of
from postwerk.ratelimit.service import RateLimitPolicy
from postwerk.store.scratch import scratch_postgres, scratch_sqlite
from postwerk.store.sending_rate import (
    _INSERT_WINDOW,
    _PRUNE,
    _SENDER_WINDOW,
    _UPDATE_WINDOW,
)
from postwerk.store.tables import delivery_boxes, domains, mail_addresses, projects, sending_windows
from postwerk.unix_sockets import serve_unix

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
APPLICATION_NAME = "postwerk-ratelimit-bench"
TIERS = "[100,500,1000,5000]"
TIER = 5000
CHUNK = 20_000
DOMAINS = 100
START_TIMEOUT = 60.0
CLOCK = os.sysconf("SC_CLK_TCK")


# --- provisioning -----------------------------------------------------------------------------------------


def provision(engine: Engine, accounts: int) -> list[str]:
    """`accounts` accounts in one project (over `DOMAINS` domains): one in ten a delivery box (the default
    tier), the others mailboxes at the largest tier; each with a window of a few counts spread over the last
    hour. Returns their ids."""
    now = datetime.now(UTC)
    now_slot = slot_of(time.time())
    generator = random.Random(7)
    project_id = str(uuid.uuid4())
    domain_ids = [str(uuid.uuid4()) for _ in range(DOMAINS)]
    password_hash = "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$bench$bench"
    ids: list[str] = []
    with engine.begin() as connection:
        connection.execute(insert(projects), [project_row(project_id, "p-bench1", "rate limit bench", now)])
        connection.execute(
            insert(domains),
            [
                domain_row(d, project_id, f"d{n}.ratelimit.bench.example", now)
                for n, d in enumerate(domain_ids)
            ],
        )
        rows: dict[Any, list[dict[str, object]]] = {
            mail_addresses: [],
            delivery_boxes: [],
            sending_windows: [],
        }
        for n in range(accounts):
            account = str(uuid.uuid4())
            ids.append(account)
            if n % 10 == 9:
                rows[delivery_boxes].append(
                    delivery_box_row(account, project_id, f"db-bench{n}", password_hash, now)
                )
            else:
                domain = n % DOMAINS
                rows[mail_addresses].append(
                    mailbox_row(
                        account,
                        project_id,
                        domain_ids[domain],
                        f"user{n}",
                        f"d{domain}.ratelimit.bench.example",
                        password_hash,
                        now,
                        spam_active=False,
                        rate_limit_id=tier_id(TIER),
                    )
                )
            slots = sorted({now_slot - generator.randrange(WINDOW_SLOTS) for _ in range(3)})
            window = Window(tuple((slot, generator.randrange(1, 5)) for slot in slots))
            rows[sending_windows].append(
                {"account_id": account, "counts": window.encode(), "newest_slot": slots[-1]}
            )
            if len(rows[sending_windows]) >= CHUNK or n == accounts - 1:
                for table, chunk in rows.items():
                    if chunk:
                        connection.execute(insert(table), chunk)
                        chunk.clear()
    analyze(engine)
    return ids


def explain(engine: Engine) -> None:
    values = {"key": "x", "account": "x", "new_counts": "1:1", "newest": 1, "oldest": 1}
    statements = {
        **{f"account by {kind}": statement for kind, statement in _SENDER_WINDOW.items()},
        "update window": _UPDATE_WINDOW,
        "insert window": _INSERT_WINDOW[engine.dialect.name],
        "prune": _PRUNE,
    }
    print(f"\n{engine.dialect.name}: plans with the bench's rows")
    with engine.connect() as connection:
        for name, statement in statements.items():
            compiled = statement.compile(engine)
            if engine.dialect.name == "sqlite":
                positional = tuple(values[key] for key in compiled.positiontup or ())
                rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
                plan = " | ".join(str(row[-1]) for row in rows)
            else:
                named = {key: values[key] for key in compiled.params}
                rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", named)
                plan = " | ".join(str(row[0]).strip() for row in rows)
            print(f"  {name:17} {plan or '(no table read)'}")


# --- the service under test ------------------------------------------------------------------------------


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    socket: Path

    def cpu_ticks(self) -> int:
        return _ticks(self.process.pid)


@contextmanager
def service(command: list[str], environment: dict[str, str], path: Path) -> Iterator[Service]:
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(str(path))
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start: {process.communicate()[1]!r}") from None
                time.sleep(0.05)
        yield Service(process, path)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def serve_floor(path: Path) -> None:
    """The floor: the service's own protocol handling and thread hop, answering DUNNO at once."""

    def nothing(login: str, recipients: int, now: float) -> str | None:
        return None

    policy = RateLimitPolicy(nothing, ThreadPoolExecutor(max_workers=1))
    asyncio.run(serve_unix(path, policy.handle, group=None, mode=0o600, log=logging.getLogger("floor")))


def _request(account: str) -> bytes:
    return (
        "request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nprotocol_name=ESMTP\n"
        "client_address=127.0.0.1\nclient_name=localhost\nhelo_name=client.bench.example\n"
        f"sasl_method=PLAIN\nsasl_username={account}\nsender=user@d1.ratelimit.bench.example\n"
        "recipient=\nrecipient_count=1\nsize=10240\n\n"
    ).encode()


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    service_ticks: int
    database_ticks: int | None
    latencies: list[float]
    answers: Counter[str]

    def row(self) -> str:
        rate = self.requests / self.seconds
        service_us = self.service_ticks / CLOCK / self.requests * 1e6
        database = (
            f"{self.database_ticks / CLOCK / self.requests * 1e6:8.0f}"
            if self.database_ticks is not None
            else "       -"
        )
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        return f"{self.name:9} {rate:9.0f} {p50:7.2f} {p99:7.2f} {service_us:10.0f} {database}"


def drive(
    path: Path, accounts: list[str], requests: int, clients: int, seed: int
) -> tuple[float, list[float], Counter[str]]:
    generator = random.Random(seed)
    plan = [generator.choice(accounts) for _ in range(requests)]
    shares = [plan[index::clients] for index in range(clients)]
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(share: list[str]) -> None:
        mine: list[float] = []
        replies: Counter[str] = Counter()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(path))
            barrier.wait()
            buffer = b""
            for account in share:
                started = time.perf_counter()
                connection.sendall(_request(account))
                while b"\n\n" not in buffer:
                    chunk = connection.recv(4096)
                    if not chunk:
                        raise RuntimeError("the service closed the connection")
                    buffer += chunk
                reply, _, buffer = buffer.partition(b"\n\n")
                mine.append(time.perf_counter() - started)
                replies[reply.decode()] += 1
        with lock:
            latencies.extend(mine)
            answers.update(replies)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, answers


def _backend_pids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION_NAME},
        )
        return [int(row[0]) for row in rows]


def _sum_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):  # a backend that ended counts no more
            total += _ticks(pid)
    return total


def measure(
    name: str,
    command: list[str],
    environment: dict[str, str],
    folder: Path,
    accounts: list[str],
    args: argparse.Namespace,
    engine: Engine | None,
) -> Result:
    path = folder / f"{name}.sock"
    with service([*command, "--socket", str(path)], environment, path) as running:
        # Warm-up: every worker's connection opened, statements prepared.
        drive(path, accounts, max(args.clients * 20, args.requests // 10), args.clients, seed=1)
        backends = _backend_pids(engine) if engine is not None else []
        service_before, database_before = running.cpu_ticks(), _sum_ticks(backends)
        seconds, latencies, answers = drive(path, accounts, args.requests, args.clients, seed=2)
        service_ticks = running.cpu_ticks() - service_before
        database_ticks = _sum_ticks(backends) - database_before if engine is not None else None
    return Result(name, args.requests, seconds, service_ticks, database_ticks, latencies, answers)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=20, help="connections at once (smtpd processes)")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--quick", action="store_true", help="10,000 accounts, 4,000 requests")
    parser.add_argument("--serve-floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--socket", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.socket)
        return 0
    if args.quick:
        args.accounts, args.requests = 10_000, 4_000

    base_environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "POSTWERK_LOG_LEVEL": "WARNING",
        "POSTWERK_RATE_LIMIT_TIERS": TIERS,
        "POSTWERK_DEFAULT_RATE_LIMIT": "500",
    }
    results: list[Result] = []
    print(
        f"rate-limit policy service: {args.accounts:,} accounts with a window each, {args.requests:,} "
        f"requests on {args.clients} connections, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} at the start"
    )
    with tempfile.TemporaryDirectory(prefix="postwerk-ratelimit-bench-") as temporary:
        folder = Path(temporary)
        floor = [sys.executable, __file__, "--serve-floor", "x"]
        results.append(measure("floor", floor, base_environment, folder, ["x"], args, None))
        if args.database in {"sqlite", "both"}:
            data = folder / "sqlite"
            data.mkdir()
            with scratch_sqlite(data) as engine:
                started = time.perf_counter()
                accounts = provision(engine, args.accounts)
                print(f"sqlite: provisioned in {time.perf_counter() - started:.0f} s")
                if args.explain:
                    explain(engine)
                environment = {
                    **base_environment,
                    "POSTWERK_DATA_DIR": str(data),
                    "POSTWERK_DATABASE_URL": engine.url.render_as_string(hide_password=False),
                }
                command = [sys.executable, "-m", "postwerk.ratelimit"]
                results.append(measure("sqlite", command, environment, folder, accounts, args, None))
        if args.database in {"postgres", "both"}:
            with scratch_postgres(POSTGRES_URL, prefix="pw_ratelimit_bench") as engine:
                started = time.perf_counter()
                accounts = provision(engine, args.accounts)
                print(f"postgres: provisioned in {time.perf_counter() - started:.0f} s")
                if args.explain:
                    explain(engine)
                with engine.connect() as connection:
                    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
                url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}&application_name={APPLICATION_NAME}"
                environment = {
                    **base_environment,
                    "POSTWERK_DATA_DIR": str(folder),
                    "POSTWERK_DATABASE_URL": url,
                }
                command = [sys.executable, "-m", "postwerk.ratelimit"]
                results.append(measure("postgres", command, environment, folder, accounts, args, engine))

    print()
    print("run          req/s  p50 ms  p99 ms  service CPU  database CPU (µs per request)")
    print("-" * 78)
    for result in results:
        print(result.row())
    unexpected = {
        result.name: dict(result.answers) for result in results if set(result.answers) != {"action=DUNNO"}
    }
    print(f"unexpected answers: {unexpected or 'none'}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    raise SystemExit(main())
