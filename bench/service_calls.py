"""Single-threaded cost of the two hottest API reads, in process, without HTTP: the service call plus the
wire body (written by the database, `store.address_document`), for GET one address and a list of 100,
on SQLite and PostgreSQL.

    .venv/bin/python bench/service_calls.py

It isolates what Postwerk's own code costs per request from the server stack that bench/api.py measures.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context, projects
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import Caller
from postwerk.store.repository import AddressFilter, Database, Page, Sorting
from postwerk.store.scratch import scratch_postgres, scratch_sqlite

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
SORT = [Sorting("domain_ascii"), Sorting("local_part")]


def median_us(call: Callable[[], object], repeat: int) -> float:
    for _ in range(min(50, repeat)):
        call()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def measure(engine: Engine, name: str) -> None:
    context = Context(Database(engine), RateLimitCatalogue.from_values([500], 500))
    project_id, _ = projects.create_project(context, "service calls")
    projects.add_domain(context, "calls.example", project_id)
    _, token = projects.create_token(context, admin=False, project_reference=project_id, read_only=False)
    caller = Caller(token=token)
    ids = [
        addresses.create(
            context,
            caller,
            project_id,
            addresses.NewAddress(
                address=f"user{i:03d}@calls.example",
                forward_addresses=["copy@elsewhere.example"] if i % 3 == 0 else [],
                mailbox=addresses.NewMailbox(password="a long bench password", quota_in_bytes=-1),
            ),
        )
        for i in range(100)
    ]

    def get_one() -> bytes:
        return addresses.get(context, caller, ids[50]).encode()

    def list_100() -> bytes:
        documents, _ = addresses.list_for_project(
            context,
            caller,
            project_id,
            AddressFilter(project_ids=None),
            SORT,
            Page(limit=10000, skip=0),
        )
        return ("[" + ",".join(documents) + "]").encode()

    get_us, list_us = median_us(get_one, 1000), median_us(list_100, 200)
    print(f"{name:<9} GET one address {get_us:8.0f} us   list of 100 {list_us:8.0f} us")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder, scratch_sqlite(Path(folder)) as engine:
        measure(engine, "sqlite")
    with scratch_postgres(POSTGRES_URL, prefix="pw_bench") as engine:
        measure(engine, "postgres")
    return 0


if __name__ == "__main__":
    sys.exit(main())
