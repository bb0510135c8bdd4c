"""HTTP API throughput of Postwerk on SQLite and on PostgreSQL, against the framework's floor.

For each database the script seeds data through the service layer, starts the real app (the one
`postwerk.api.app.create_app` returns, plus a constant-JSON route) under uvicorn in a separate process on a
free 127.0.0.1 port, and drives it with wrk at 32 connections:

  floor   GET a constant JSON object (a plain `def` handler returning `json_response`, no auth, no database,
          declared with Postwerk's own `add_route`), matched first; a copy matched after all of Postwerk's
          routes shows what routing costs there (not used in the ratios)
  get     GET /v2/mail-addresses/{id}                     (project token)
  list    GET /v2/projects/{id}/mail-addresses            (a project with exactly 100 mailboxes)
  create  POST /v2/projects/{id}/mail-addresses           (a new mailbox with a password each time)

The reads are measured in alternating rounds (floor, floor-last, get, list, floor, ...), each round started
once the machine is idle (bounded wait), and each ratio is the median of its per-round ratios: load from
other jobs on a shared machine then skews one round rather than the result. Create is bound by Argon2id by
design, so it is compared with the rate of bare `hash_password` calls on as many threads as the server's
handler pool (`DEFAULT_WORKER_THREADS`), measured in this process right before and right after the create
run while the server is idle.

    .venv/bin/python bench/api.py            # full run (about four minutes)
    .venv/bin/python bench/api.py --quick    # short run (about one minute)

Exit code 0 whatever the figures; non-zero only when the benchmark itself fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import text
from starlette.responses import Response

from postwerk.api.app import DEFAULT_WORKER_THREADS
from postwerk.api.deps import ContextDep
from postwerk.api.responses import json_response
from postwerk.api.routing import add_route
from postwerk.bootstrap import build_context
from postwerk.domain.passwords import hash_password
from postwerk.loopback import free_loopback_port
from postwerk.service import Context
from postwerk.service import mail_addresses as address_service
from postwerk.service import projects as project_service
from postwerk.service.access import Caller
from postwerk.settings import Settings
from postwerk.store.db import create_db_engine

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"
CONNECTIONS = 32
WRK_THREADS = 2
SERVER_THREADS = DEFAULT_WORKER_THREADS  # the server's thread pool, where handlers (and hashing) run
LIST_SIZE = 100
FLOOR_PATH = "/bench/floor"
FLOOR_LAST_PATH = "/bench/floor-last"
FLOOR_BODY = {"ok": True, "service": "postwerk", "version": 2}
PASSWORD = "bench password 4711"
QUOTA = 2 * 1024**3
SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
WRK_SLACK = 60.0  # on top of a run's duration before it counts as hung
IDLE_WAIT = 30.0  # seconds to wait at most, before each round, for other jobs on the machine to calm down

TARGETS = {"get/floor": 0.6, "list/floor": 0.3, "create/hash": 0.8}


class BenchError(Exception):
    """The benchmark itself failed (not a missed target)."""


@dataclass(frozen=True)
class Plan:
    warmup: float  # seconds of unmeasured load before the first round of each endpoint and before create
    rounds: int  # alternating rounds of floor, get, list
    read_seconds: float  # per endpoint and round
    create_seconds: float
    hash_seconds: float  # each of the two hash-rate measurements


FULL = Plan(warmup=2.0, rounds=3, read_seconds=4.0, create_seconds=10.0, hash_seconds=5.0)
QUICK = Plan(warmup=1.0, rounds=1, read_seconds=3.0, create_seconds=4.0, hash_seconds=2.0)


# --- the server process --------------------------------------------------------------------------------


def bench_floor(context: ContextDep) -> Response:
    # Takes the context like every Postwerk handler, so it is dispatched the same way (on the event loop
    # where the database's reads run there, in the thread pool otherwise) and pays no more, no less.
    return json_response(FLOOR_BODY)


def serve(settings: Settings, port: int) -> None:
    """Run in a separate (spawned) process: the production app plus the floor routes, under uvicorn."""
    import uvicorn

    from postwerk.api.app import create_app

    context = build_context(settings, migrate=False)
    app = create_app(context, max_request_bytes=settings.max_request_bytes)
    # Declared exactly as Postwerk declares its own handlers, on the same app and router. Routes are matched
    # in order, at a cost per route passed: the floor is moved to the front so that it pays about the
    # routing the measured routes pay (they come early in the first router). A second copy stays at the
    # end, behind all of Postwerk's routes, to show what routing costs there.
    for path, operation_id in ((FLOOR_LAST_PATH, "bench-floor-last"), (FLOOR_PATH, "bench-floor")):
        add_route(
            app.router,
            "GET",
            path,
            bench_floor,
            operation_id=operation_id,
            status=200,
            summary="Benchmark floor: a constant JSON object.",
            tags=["Benchmark"],
        )
    app.router.routes.insert(0, app.router.routes.pop())  # FLOOR_PATH, added last, is matched first
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def free_port() -> int:
    return free_loopback_port(HOST)


def http_get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"x-access-token": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            headers = {name.lower(): value for name, value in response.headers.items()}
            return int(response.status), headers, response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), {}, error.read()


@contextmanager
def running_server(settings: Settings) -> Iterator[str]:
    """The server in its own process; yields its base URL and always stops it."""
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=serve, args=(settings, port), name="postwerk-bench-server", daemon=True
    )
    process.start()
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if not process.is_alive():
                raise BenchError(f"the server process exited with code {process.exitcode}")
            if time.monotonic() > deadline:
                raise BenchError(f"the server did not answer within {SERVER_START_TIMEOUT:.0f} s")
            try:
                if http_get(base + FLOOR_PATH)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        yield base
    finally:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn shuts down gracefully
            process.join(SERVER_STOP_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join(5)


# --- databases -----------------------------------------------------------------------------------------


@contextmanager
def sqlite_settings() -> Iterator[Settings]:
    with tempfile.TemporaryDirectory(prefix="postwerk-bench-") as folder:
        yield Settings(data_dir=Path(folder))


@contextmanager
def postgres_settings(url: str) -> Iterator[Settings]:
    """A fresh schema for this run, dropped afterwards even on errors."""
    schema = f"pw_bench_{secrets.token_hex(4)}"
    admin = create_db_engine(url, pool_size=1, connect_args={"connect_timeout": 10})
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:
        admin.dispose()
        raise BenchError(f"no usable PostgreSQL at {url}: {type(error).__name__}: {error}") from error
    separator = "&" if "?" in url else "?"
    try:
        with tempfile.TemporaryDirectory(prefix="postwerk-bench-") as folder:
            yield Settings(
                data_dir=Path(folder),
                database_url=f"{url}{separator}options=-csearch_path%3D{schema}",
            )
    finally:
        with admin.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '15s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- seeding (service layer, not HTTP) -----------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    list_project: str
    list_token: str
    address_id: str
    create_project: str
    create_token: str
    create_domain: str


def _project(context: Context, name: str) -> tuple[str, str, str]:
    project_id, short_id = project_service.create_project(context, f"benchmark: {name}")
    domain = f"{name}-{short_id.removeprefix('p-')}.example.org"
    project_service.add_domain(context, domain, project_id)
    _, token = project_service.create_token(
        context, admin=False, project_reference=project_id, read_only=False
    )
    return project_id, domain, token


def seed(settings: Settings) -> Seed:
    context = build_context(settings)  # runs the migrations
    try:
        list_project, list_domain, list_token = _project(context, "list")
        caller = Caller(token=list_token)

        def create(index: int) -> str:
            request = address_service.NewAddress(
                address=f"user{index:03d}@{list_domain}",
                mailbox=address_service.NewMailbox(password=PASSWORD, quota_in_bytes=QUOTA),
            )
            return address_service.create(context, caller, list_project, request)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            ids = list(pool.map(create, range(LIST_SIZE)))
        create_project, create_domain, create_token = _project(context, "create")
        return Seed(list_project, list_token, ids[0], create_project, create_token, create_domain)
    finally:
        context.db.engine.dispose()


def check_routes(base: str, data: Seed) -> None:
    """The routes answer as the measurements assume, before any of them is timed."""
    status, _, body = http_get(base + FLOOR_LAST_PATH)
    if status != 200 or json.loads(body) != FLOOR_BODY:
        raise BenchError(f"the second floor route answered {status}: {body[:200]!r}")
    status, _, body = http_get(f"{base}/v2/mail-addresses/{data.address_id}", data.list_token)
    if status != 200 or json.loads(body).get("id") != data.address_id:
        raise BenchError(f"GET one address answered {status}: {body[:200]!r}")
    url = f"{base}/v2/projects/{data.list_project}/mail-addresses"
    status, headers, body = http_get(url, data.list_token)
    count = len(json.loads(body)) if status == 200 else -1
    total = headers.get("x-pagination-totalcount")
    if count != LIST_SIZE or total != str(LIST_SIZE):
        raise BenchError(f"the list answered {status} with {count} items (total {total})")


# --- wrk -----------------------------------------------------------------------------------------------

# Every script ends with this: one JSON line with wrk's figures and the status counts the threads kept.
LUA_REPORT = r"""
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local statuses = {}
  local sample = ""
  for _, thread in ipairs(threads) do
    local counted = thread:get("statuses")
    if counted then
      for status, n in pairs(counted) do statuses[status] = (statuses[status] or 0) + n end
    end
    sample = thread:get("sample") or sample
  end
  local parts = {}
  for status, n in pairs(statuses) do table.insert(parts, string.format('"%d": %d', status, n)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"statuses": {%s}, "sample": "%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ", "), sample))
end
"""

# POST a new mailbox each time. Addresses never collide: random tag of this benchmark run, number of the
# wrk run, wrk thread id, per-thread counter. Only the create script counts statuses (reads stay lean).
LUA_CREATE = r"""
local counter = 0
function init(args)
  tag, domain = args[2] .. "r" .. args[1], args[3]
  statuses = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"address": "b%s-%d-%d@%s", "mailbox": {"password": "@PASSWORD@", "quotaInBytes": @QUOTA@, ' ..
    '"enableSpamProtection": true}}', tag, tid, counter, domain)
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 201 and sample == nil then
    sample = status .. " " .. string.gsub(string.sub(body, 1, 300), '[%c"\\]', " ")
  end
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    ok: int  # non-error answers for reads, 201s for create
    p50_ms: float
    p99_ms: float
    socket_errors: int
    timeouts: int
    other_statuses: dict[str, int] = field(default_factory=dict)
    sample: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def problems(self) -> str:
        parts = [f"{status}: {n}" for status, n in sorted(self.other_statuses.items())]
        if self.socket_errors:
            parts.append(f"socket errors: {self.socket_errors}")
        if self.timeouts:
            parts.append(f"timeouts: {self.timeouts}")
        if parts and self.sample:
            parts.append(f"e.g. {self.sample!r}")
        return ", ".join(parts)


class Wrk:
    def __init__(self, binary: str, scripts: Path, threads: int) -> None:
        self.binary = binary
        self.read_script = scripts / "read.lua"
        self.create_script = scripts / "create.lua"
        self.read_script.write_text(LUA_REPORT)
        create = LUA_CREATE.replace("@PASSWORD@", PASSWORD).replace("@QUOTA@", str(QUOTA))
        self.create_script.write_text(create + LUA_REPORT)
        self.threads = threads
        self._runs = itertools.count(1)

    def run(
        self, url: str, token: str, seconds: float, *, create_args: tuple[str, str] | None = None
    ) -> WrkResult:
        """One wrk run; `create_args` (tag, domain) switches to the create script."""
        script = self.read_script if create_args is None else self.create_script
        command = [
            self.binary,
            f"-t{self.threads}",
            f"-c{CONNECTIONS}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-H",
            f"x-access-token: {token}",
            "-s",
            str(script),
            url,
            "--",
            str(next(self._runs)),
            *(create_args or ()),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + WRK_SLACK)
        except subprocess.TimeoutExpired as error:
            raise BenchError(f"wrk did not finish: {url}") from error
        lines = [line for line in done.stdout.splitlines() if line.startswith("WRKJSON ")]
        if done.returncode != 0 or not lines:
            raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        data: dict[str, Any] = json.loads(lines[-1].removeprefix("WRKJSON "))
        errors: dict[str, int] = data["errors"]
        requests = int(data["requests"])
        if create_args is not None:  # only 201 counts
            statuses: dict[str, int] = data["statuses"]
            ok = statuses.get("201", 0)
            others = {status: n for status, n in statuses.items() if status != "201"}
        else:  # wrk counts the answers with a status over 399
            ok = requests - errors["status"]
            others = {"4xx/5xx": errors["status"]} if errors["status"] else {}
        return WrkResult(
            requests=requests,
            seconds=data["duration_us"] / 1e6,
            ok=ok,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            socket_errors=errors["connect"] + errors["read"] + errors["write"],
            timeouts=errors["timeout"],
            other_statuses=others,
            sample=str(data["sample"]),
        )


# --- bare hashing --------------------------------------------------------------------------------------


def hash_rate(seconds: float, workers: int = SERVER_THREADS) -> float:
    """Hashes per second of `hash_password` on `workers` threads, all hashing for `seconds`."""
    hash_password(PASSWORD)

    def hash_until(deadline: float) -> int:
        count = 0
        while time.monotonic() < deadline:
            hash_password(PASSWORD)
            count += 1
        return count

    with ThreadPoolExecutor(max_workers=workers) as pool:
        start = time.monotonic()
        futures = [pool.submit(hash_until, start + seconds) for _ in range(workers)]
        total = sum(future.result(timeout=seconds + WRK_SLACK) for future in futures)
        elapsed = time.monotonic() - start
    return total / elapsed


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of the machine's CPU time in use over `seconds` (load from elsewhere, when we are idle)."""

    def sample() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy_before, total_before = sample()
    time.sleep(seconds)
    busy_after, total_after = sample()
    return (busy_after - busy_before) / max(1, total_after - total_before)


def wait_until_idle(max_wait: float, threshold: float = 0.25) -> float:
    """Wait (at most `max_wait` seconds) for a second in which the machine is under `threshold` busy:
    other jobs on a shared machine skew a round. Returns the share busy in the last second sampled."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy >= threshold and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


# --- one database --------------------------------------------------------------------------------------


@dataclass
class DatabaseResult:
    name: str
    busy_before: list[float]  # machine CPU busy (others: we are idle) before each round and before create
    floor: list[WrkResult]
    floor_last: list[WrkResult]
    get: list[WrkResult]
    listed: list[WrkResult]
    create: WrkResult
    hashes_before: float
    hashes_after: float

    @property
    def hashes_per_second(self) -> float:
        return (self.hashes_before + self.hashes_after) / 2

    def ratios(self, name: str) -> list[float]:
        if name == "create/hash":
            return [self.create.rate / self.hashes_per_second]
        measured = self.get if name == "get/floor" else self.listed
        return [one.rate / floor.rate for one, floor in zip(measured, self.floor, strict=True)]


def median_run(runs: list[WrkResult]) -> WrkResult:
    return sorted(runs, key=lambda run: run.rate)[len(runs) // 2]


def run_database(name: str, settings: Settings, wrk: Wrk, plan: Plan, idle_wait: float) -> DatabaseResult:
    log(f"{name}: seeding {LIST_SIZE} mailboxes through the service layer")
    data = seed(settings)
    with running_server(settings) as base:
        check_routes(base, data)
        busy: list[float] = []
        token = data.list_token
        reads = {
            "floor": base + FLOOR_PATH,
            "floor-last": base + FLOOR_LAST_PATH,
            "get": f"{base}/v2/mail-addresses/{data.address_id}",
            "list": f"{base}/v2/projects/{data.list_project}/mail-addresses",
        }
        log(f"{name}: warm-up, then {plan.rounds} round(s) of floor, floor-last, get, list")
        for url in reads.values():
            wrk.run(url, token, plan.warmup)
        runs: dict[str, list[WrkResult]] = {key: [] for key in reads}
        for _ in range(plan.rounds):
            busy.append(wait_until_idle(idle_wait))
            for key, url in reads.items():
                runs[key].append(wrk.run(url, token, plan.read_seconds))
        log(f"{name}: bare hash_password on {SERVER_THREADS} threads, create, hash_password again")
        busy.append(wait_until_idle(idle_wait))
        hashes_before = hash_rate(plan.hash_seconds)
        url = f"{base}/v2/projects/{data.create_project}/mail-addresses"
        create_args = (secrets.token_hex(3), data.create_domain)
        wrk.run(url, data.create_token, plan.warmup, create_args=create_args)
        create = wrk.run(url, data.create_token, plan.create_seconds, create_args=create_args)
        hashes_after = hash_rate(plan.hash_seconds)
    return DatabaseResult(
        name,
        busy,
        runs["floor"],
        runs["floor-last"],
        runs["get"],
        runs["list"],
        create,
        hashes_before,
        hashes_after,
    )


# --- output --------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ratio_cell(result: DatabaseResult, name: str) -> tuple[str, str]:
    values = result.ratios(name)
    value, target = statistics.median(values), TARGETS[name]
    spread = f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else ""
    return f"{name} = {value:.2f}{spread}", f">= {target:.2f}  {'PASS' if value >= target else 'FAIL'}"


def table(result: DatabaseResult, plan: Plan) -> str:
    rows: list[tuple[str, WrkResult, str]] = [
        ("floor: constant JSON", median_run(result.floor), ""),
        ("  same, matched last", median_run(result.floor_last), ""),
        ("GET one address", median_run(result.get), "get/floor"),
        (f"list {LIST_SIZE} addresses", median_run(result.listed), "list/floor"),
        ("create address (201s)", result.create, "create/hash"),
    ]
    header = (
        f"{'measurement':<27}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}  {'ratio (min-max of rounds)':<33}target"
    )
    lines = [
        f"{result.name}: median of {plan.rounds} round(s) for the reads; "
        "CPU busy (others) before each round and create: "
        + ", ".join(f"{share:.0%}" for share in result.busy_before),
        header,
        "-" * (len(header) + 8),
    ]
    for label, run, ratio in rows:
        line = f"{label:<27}{run.rate:>8.1f}{run.p50_ms:>9.1f}{run.p99_ms:>9.1f}  "
        if ratio:
            cell, verdict = _ratio_cell(result, ratio)
            line += f"{cell:<33}{verdict}"
        lines.append(line.rstrip())
    lines.append(
        f"{f'hash_password, {SERVER_THREADS} thr.':<27}{result.hashes_per_second:>8.1f}"
        f"{'':>20}(before create {result.hashes_before:.1f}, after {result.hashes_after:.1f})"
    )
    all_runs = [("floor", run) for run in result.floor + result.floor_last]
    all_runs += [("get", run) for run in result.get]
    all_runs += [("list", run) for run in result.listed] + [("create", result.create)]
    problems = [f"  {label}: {run.problems}" for label, run in all_runs if run.problems]
    lines.append("unexpected answers:" if problems else "unexpected answers: none")
    lines.extend(problems)
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------------


def _raise_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that every `finally` runs: server stopped, schema dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short measurements, one round (rough figures)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        action="append",
        help="only this database (repeatable; default: both)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("POSTWERK_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help=f"PostgreSQL to create the scratch schema in (default {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk", help="the wrk binary")
    parser.add_argument("--wrk-threads", type=int, default=WRK_THREADS, help="wrk -t")
    parser.add_argument(
        "--idle-wait",
        type=float,
        default=IDLE_WAIT,
        help=f"before each round, wait up to this many seconds for an idle machine (default {IDLE_WAIT:g})",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    plan = QUICK if args.quick else FULL
    databases: list[str] = args.database or ["sqlite", "postgres"]
    setups: dict[str, Callable[[], AbstractContextManager[Settings]]] = {
        "sqlite": sqlite_settings,
        "postgres": lambda: postgres_settings(args.postgres_url),
    }
    results: list[DatabaseResult] = []
    try:
        if not Path(args.wrk).is_file():
            raise BenchError(f"wrk not found at {args.wrk}")
        with tempfile.TemporaryDirectory(prefix="postwerk-bench-wrk-") as scripts:
            wrk = Wrk(args.wrk, Path(scripts), args.wrk_threads)
            for name in databases:
                with setups[name]() as settings:
                    results.append(run_database(name, settings, wrk, plan, args.idle_wait))
    except BenchError as error:
        print(f"bench/api.py: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/api.py: interrupted", file=sys.stderr)
        return 130

    print(
        f"\nPostwerk API benchmark ({'quick' if args.quick else 'full'}): wrk -t{args.wrk_threads} "
        f"-c{CONNECTIONS}; reads {plan.warmup:g} s warm-up + {plan.rounds} x {plan.read_seconds:g} s, "
        f"create {plan.warmup:g} s + {plan.create_seconds:g} s; {os.cpu_count()} CPUs\n"
    )
    for result in results:
        print(table(result, plan) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
