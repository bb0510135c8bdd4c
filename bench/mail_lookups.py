"""What one message's database work costs on PostgreSQL, piece by piece, without the mail servers: the CPU of
the backend (from /proc) and of the client for each statement the mail servers send per inbound message,
through TCP on 127.0.0.1 and through PostgreSQL's Unix socket; the usage write per delivery; the usage
dictionary per delivery (the service over its socket, as dovecot-lda's quota plugin talks to it); and the
policy service per request over its own socket (PostgreSQL and SQLite), which smtpd asks only about the
recipients the `room` map does not let through. 20,000 mailboxes, bulk-loaded.

    .venv/bin/python bench/mail_lookups.py [--calls N]

Where bench/smtp_inbound.py says how much PostgreSQL adds per message, this says which part and why; the
baseline of every line is `SELECT 1` on the same connection (a round trip with nothing in it).
Needs the PostgreSQL server (127.0.0.1:5432, trust) and its socket folder.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from mail_stacks import Box, bulk_load, postgres_database

from postwerk.mailstack.layout import EMBEDDED_ACCOUNTS, Layout
from postwerk.mailstack.render import render
from postwerk.service_main import mail_service_database
from postwerk.settings import Settings
from postwerk.store import repository
from postwerk.store.db import create_db_engine, upgrade

MAILBOXES = 20_000
DOMAIN = "lookups.bench.example"
CLOCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


def rendered_queries(url: str, folder: Path) -> dict[str, str]:
    """The per-message queries of the rendered configuration (`%s`, `%u` still in them), by map name."""
    settings = Settings(data_dir=folder, database_url=url, mail_hostname="mx.bench.example")
    queries: dict[str, str] = {}
    for rendered in render(settings, Layout.embedded(folder), EMBEDDED_ACCOUNTS, mail_uid=1000):
        name = rendered.path.name.removeprefix("postwerk-").split(".")[0]
        for line in rendered.content.replace("\n    ", " ").splitlines():
            key, _, value = line.partition(" = ")
            if key in {"query", "user_query"} and name in {"recipients", "domains", "room", "sql"}:
                queries[name] = value.strip()
    return queries


def statements(url: str, boxes: list[Box], calls: int, label: str, folder: Path) -> None:
    queries = rendered_queries(url, folder)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        backend = connection.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        cursor = psycopg.ClientCursor(connection)  # plain query text, as Postfix's and Dovecot's clients send
        cases: dict[str, Callable[[Box], str]] = {
            "SELECT 1": lambda box: "SELECT 1",
            "room (smtpd, in place of the policy)": lambda box: queries["room"].replace("%s", box.address),
            "recipient (cleanup)": lambda box: queries["recipients"].replace("%s", box.address),
            "domain (trivial-rewrite)": lambda box: queries["domains"].replace("%s", DOMAIN),
            "userdb (dovecot-lda)": lambda box: queries["sql"].replace("%u", box.mailbox_id),
        }
        for name, query in cases.items():
            backend_before, client_before = cpu_seconds(backend[0]), time.process_time()
            for box in boxes[:calls]:
                cursor.execute(query(box).encode().decode("latin-1"))
                cursor.fetchall()
            backend_us = (cpu_seconds(backend[0]) - backend_before) / calls * 1e6
            client_us = (time.process_time() - client_before) / calls * 1e6
            print(f"  {label:<10} {name:<37} backend {backend_us:6.0f} us   client {client_us:6.0f} us")


USAGE_BATCHES = (1, 5, 20)


def usage_writes(url: str, boxes: list[Box], calls: int) -> None:
    """The usage service's write, as it runs it (`Database.write_statement` on its database), with 1, 5 and
    20 deliveries a write (what `usage.dict_server`'s window gathers decides which): the CPU of the backend
    and of this process per delivery. Each batch size on mailboxes of its own."""
    database = mail_service_database(url, pool_size=1)
    with database.engine.connect() as connection:
        backend = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    for round_number, batch in enumerate(USAGE_BATCHES):
        chosen = boxes[round_number * calls : (round_number + 1) * calls]
        backend_before, client_before = cpu_seconds(backend), time.process_time()
        for start in range(0, len(chosen), batch):
            changes = {box.mailbox_id: (None, 10240) for box in chosen[start : start + batch]}
            with database.write_statement() as connection:
                repository.update_usage(connection, changes, datetime.now(UTC))
        backend_us = (cpu_seconds(backend) - backend_before) / len(chosen) * 1e6
        client_us = (time.process_time() - client_before) / len(chosen) * 1e6
        label = f"usage write, per delivery ({batch} a write)"
        print(f"  {'socket':<10} {label:<37} backend {backend_us:6.0f} us   client {client_us:6.0f} us")
    database.engine.dispose()


POLICY_REQUEST = (
    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=127.0.0.1\n"
    "client_name=localhost\nhelo_name=client.bench.example\nsender=sender@outside.example\n"
    "recipient={recipient}\nrecipient_count=0\nqueue_id=\ninstance=1a2b.3c4d.5e6f.0\nsize=10240\n"
    "sasl_method=\nsasl_username=\nencryption_protocol=\nserver_address=127.0.0.1\nserver_port=25\n"
    "compatibility_level=3.6\nmail_version=3.7.11\n\n"
)


@contextmanager
def mail_service(module: str, url: str, folder: Path) -> Iterator[tuple[int, Path]]:
    """One of Postwerk's mail services (`postwerk.policy`, `postwerk.usage`) on a socket in `folder`."""
    path = folder / f"{module.rpartition('.')[2]}.sock"
    environment = dict(os.environ, POSTWERK_DATABASE_URL=url, POSTWERK_LOG_LEVEL="warning")
    service = subprocess.Popen([sys.executable, "-m", module, "--socket", str(path)], env=environment)
    try:
        deadline = time.monotonic() + 30
        while not path.exists():
            if time.monotonic() > deadline or service.poll() is not None:
                raise RuntimeError(f"{module} did not start")
            time.sleep(0.05)
        yield service.pid, path
    finally:
        service.terminate()
        service.wait(timeout=30)


def policy_requests(url: str, boxes: list[Box], calls: int, label: str) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        mail_service("postwerk.policy", url, Path(folder)) as (pid, path),
        socket.socket(socket.AF_UNIX) as client,
    ):
        client.settimeout(30)
        client.connect(str(path))
        replies = client.makefile("rb")

        def ask(box: Box) -> bytes:
            client.sendall(POLICY_REQUEST.format(recipient=box.address).encode())
            answer = replies.readline()
            replies.readline()
            return answer

        for box in boxes[:100]:
            ask(box)
        before = cpu_seconds(pid)
        for box in boxes[:calls]:
            if ask(box) != b"action=OK\n":
                raise RuntimeError("the policy service refused a mailbox with room")
        service_us = (cpu_seconds(pid) - before) / calls * 1e6
    print(f"  {label:<10} policy service, per request{'':<11}service {service_us:6.0f} us")


USAGE_DELIVERY = (
    "H3\t2\t0\t\tusage\nB1\t{mailbox_id}\nA1\tpriv/quota/storage\t10240\nA1\tpriv/quota/messages\t1\nC1\n"
)
CONCURRENT_DELIVERIES = 10


def usage_deliveries(url: str, boxes: list[Box], calls: int) -> None:
    """What dovecot-lda's quota plugin does once a message is saved: a connection of its own to the usage
    dictionary, an increment, a commit it waits for. Ten at a time, as the LDAs of a burst overlap (their
    commits share the writes)."""

    def deliver(path: Path, box: Box) -> None:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(30)
            client.connect(str(path))
            client.sendall(USAGE_DELIVERY.format(mailbox_id=box.mailbox_id).encode())
            if client.makefile("rb").readline() != b"O1\n":
                raise RuntimeError("the usage service did not store a delivery")

    def deliveries(path: Path, chosen: list[Box]) -> None:
        with ThreadPoolExecutor(CONCURRENT_DELIVERIES) as pool:
            for done in [pool.submit(deliver, path, box) for box in chosen]:
                done.result()

    with (
        tempfile.TemporaryDirectory() as folder,
        mail_service("postwerk.usage", url, Path(folder)) as (
            pid,
            path,
        ),
    ):
        deliveries(path, boxes[:100])
        before = cpu_seconds(pid)
        deliveries(path, boxes[:calls])
        service_us = (cpu_seconds(pid) - before) / calls * 1e6
    print(f"  {'postgres':<10} usage service, per delivery{'':<12}service {service_us:6.0f} us")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    calls = min(args.calls, MAILBOXES // len(USAGE_BATCHES))
    addresses = [(f"{number}u@{DOMAIN}", "x") for number in range(MAILBOXES)]
    print(f"{MAILBOXES:,} mailboxes; {calls:,} calls per line; CPU per call (from /proc)")
    with tempfile.TemporaryDirectory() as folder:
        for via in ("tcp", "socket"):
            with postgres_database(via) as (engine, url):
                boxes = bulk_load(engine, addresses)
                statements(url, boxes, calls, via, Path(folder))
                if via == "socket":
                    usage_writes(url, boxes, calls)
                    usage_deliveries(url, boxes, calls)
                    policy_requests(url, boxes, calls, "postgres")
        sqlite_url = f"sqlite:///{folder}/lookups.sqlite"
        engine = create_db_engine(sqlite_url, pool_size=1)
        upgrade(engine)
        boxes = bulk_load(engine, addresses)
        engine.dispose()
        policy_requests(sqlite_url, boxes, calls, "sqlite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
