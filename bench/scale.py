"""Scale: how the cost of reading one address and of a project's searched list grows from 1,000 to
1,000,000 addresses (10 and 10,000 projects of 100 addresses each), on SQLite and PostgreSQL; and what the
admin's cross-project search costs at the large size.

    .venv/bin/python bench/scale.py [--large 1000000] [--repeat 200]

The data is bulk-loaded with SQL (not through the API). Figures are the median time of the service call
(the part whose cost depends on the data size: the API adds a constant on top), measured in this process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bulk_rows import analyze, domain_row, mailbox_row, project_row
from sqlalchemy import Engine, insert

from postwerk.domain.passwords import hash_password
from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.service import Context
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import ADMIN
from postwerk.store.repository import AddressFilter, Database, Page, Sorting
from postwerk.store.scratch import scratch_postgres, scratch_sqlite
from postwerk.store.tables import domains, mail_addresses, projects

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
PER_PROJECT = 100
CHUNK = 20_000
SEARCH_TERM = "user01"  # matches user010..user019: 10 of a project's 100 addresses (10 %)
DEFAULT_SORT = [Sorting("domain_ascii"), Sorting("local_part")]


def bulk_load(engine: Engine, total: int) -> list[tuple[str, str]]:
    """Load `total` addresses in projects of 100; return (project id, one address id) per project."""
    now = datetime.now(UTC)
    password = hash_password("bench password")
    tier = RateLimitCatalogue.from_values([500], 500).default.id
    samples: list[tuple[str, str]] = []
    project_rows: list[dict[str, object]] = []
    domain_rows: list[dict[str, object]] = []
    address_rows: list[dict[str, object]] = []

    def flush(connection: object, force: bool = False) -> None:
        if len(address_rows) >= CHUNK or (force and address_rows):
            connection.execute(insert(projects), project_rows)  # type: ignore[attr-defined]
            connection.execute(insert(domains), domain_rows)  # type: ignore[attr-defined]
            connection.execute(insert(mail_addresses), address_rows)  # type: ignore[attr-defined]
            project_rows.clear()
            domain_rows.clear()
            address_rows.clear()

    with engine.begin() as connection:
        for number in range(total // PER_PROJECT):
            project_id, domain_id = str(uuid.uuid4()), str(uuid.uuid4())
            domain = f"p{number:05d}.bench.example"
            project_rows.append(project_row(project_id, f"p-{number:06d}", f"bench {number}", now))
            domain_rows.append(domain_row(domain_id, project_id, domain, now))
            for index in range(PER_PROJECT):
                address_id = str(uuid.uuid4())
                address_rows.append(
                    mailbox_row(
                        address_id,
                        project_id,
                        domain_id,
                        f"user{index:03d}",
                        domain,
                        password,
                        now,
                        rate_limit_id=tier,
                    )
                )
                if index == PER_PROJECT // 2:
                    samples.append((project_id, address_id))
            flush(connection)
        flush(connection, force=True)
    analyze(engine)
    return samples


def median_ms(call: Callable[[int], object], repeat: int) -> float:
    for warm in range(min(20, repeat)):
        call(warm)
    timings = []
    for index in range(repeat):
        started = time.perf_counter()
        call(index)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def measure(context: Context, samples: list[tuple[str, str]], repeat: int) -> dict[str, float]:
    picks = [samples[(i * 7919) % len(samples)] for i in range(repeat + 20)]

    def get_one(i: int) -> object:
        return addresses.get(context, ADMIN, picks[i][1])

    def project_search(i: int) -> object:
        found, total = addresses.list_for_project(
            context,
            ADMIN,
            picks[i][0],
            AddressFilter(project_ids=None, search=SEARCH_TERM),
            DEFAULT_SORT,
            Page(limit=10000, skip=0),
        )
        assert total == 10, total
        return found

    return {
        "get one address": median_ms(get_one, repeat),
        "project list, search": median_ms(project_search, repeat),
    }


def admin_search_ms(context: Context, repeat: int) -> tuple[float, int]:
    term = "p00042.bench"  # one project's domain: 100 of all addresses
    result: list[int] = []

    def search(_: int) -> object:
        found, total = addresses.list_for_project(
            context,
            ADMIN,
            None,
            AddressFilter(project_ids=None, search=term),
            DEFAULT_SORT,
            Page(limit=100, skip=0),
        )
        result.append(total)
        return found

    return median_ms(search, repeat), result[-1]


@contextmanager
def database(kind: str) -> Iterator[Engine]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder, scratch_sqlite(Path(folder)) as engine:
            yield engine
    else:
        with scratch_postgres(POSTGRES_URL, prefix="pw_bench") as engine:
            yield engine


def run(kind: str, small: int, large: int, repeat: int) -> None:
    results: dict[int, dict[str, float]] = {}
    for size in (small, large):
        with database(kind) as engine:
            started = time.perf_counter()
            samples = bulk_load(engine, size)
            loaded = time.perf_counter() - started
            context = Context(Database(engine), RateLimitCatalogue.from_values([500], 500))
            results[size] = measure(context, samples, repeat)
            print(f"  {kind}: {size:>9,} addresses loaded in {loaded:6.1f} s", flush=True)
            if size == large:
                admin_ms, matched = admin_search_ms(context, max(5, repeat // 20))
    print(f"\n{kind}: median ms per call (service layer)")
    print(f"  {'operation':<24}{small:>12,}{large:>12,}{'ratio':>8}  target <= 1.3")
    for name in results[small]:
        ratio = results[large][name] / results[small][name]
        verdict = "PASS" if ratio <= 1.3 else "FAIL"
        print(
            f"  {name:<24}{results[small][name]:>12.3f}{results[large][name]:>12.3f}{ratio:>8.2f}  {verdict}"
        )
    print(f"  admin cross-project search (100 of {large:,} match): {admin_ms:.1f} ms, {matched} found\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    for kind in ("sqlite", "postgres"):
        if args.only in (None, kind):
            run(kind, args.small, args.large, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
