"""SMTP submission, end to end: messages per second that mailboxes send through the submission port
(STARTTLS, then AUTH PLAIN, a new connection per message, `--clients` at once) and that leave through the
queue, for each Argon2id parameter set of `imap_logins.py` (every AUTH pays one verify), against:

  floor           the same Postfix + Dovecot configuration without Postwerk (mail_stacks.floor_stack with
                  `submission`): the same Argon2id hashes in a passwd-file, a hash sender-login map (each
                  address owned by its mailbox), hash maps for domains and routes; no socketmap, no milter,
                  no policy or rate-limit service (baseline)
  sqlite          Postwerk's stack on SQLite: Dovecot's dict passdb answered by `postwerk.logins`, sender
                  checks by the socketmap `postwerk.mailstack.tables`, the milter `postwerk.dkim` (header
                  From: check and DKIM signing: every domain has a key), `postwerk.ratelimit` at end of data
  postgres        the same on PostgreSQL (a fresh schema), through its Unix socket (the database on the
                  same machine); `postgres-tcp`: through TCP on 127.0.0.1:5432 (only with --only)

Postwerk's stacks get one more submission listener, the same service without the rate-limit check at the
end of DATA ("no limit"): the policy service's cost is the ratio of the two, in the same stack.

    .venv/bin/python bench/smtp_submission.py [--quick] [--accounts N] [--seconds S] [--rounds N]
        [--clients N] [--only floor|sqlite|postgres|postgres-tcp ...] [--parameters cheap|postwerk|dear ...]

A message: connect, EHLO, STARTTLS, EHLO, AUTH PLAIN (initial response), MAIL FROM (the mailbox's own
address), RCPT TO (an outside address), DATA (10 KB, From: the same address, Date and Message-ID set as a
mail client does), QUIT; an asyncio client in this process, one connection per message, no pipelining, no
TLS session reuse, the server's certificate not verified. Recipients are outside the hosted domains: the
message leaves through Postfix's queue to the relay host, Postfix's own `smtp-sink` on 127.0.0.1 (a C
program: nothing of the sink's cost varies with the variant). A message counts when the sink has it; the
rate is messages over the time from the first connection to the last message at the sink. Why an outside
recipient: that is the submission path (sender checks, milter, rate limit, queue, SMTP client) and nothing
else; a hosted recipient would add the inbound delivery path (LDA, quota service, usage reports), which
`smtp_inbound.py` measures. The sink keeps each run's messages: all must be there, and in Postwerk's
variants each DKIM-signed (one signature verified with dkimpy against the domain's key), in the floor none.

Accounts: `--accounts` mailboxes over 10 domains, bulk-loaded (bulk_rows), each with the hash of one
parameter set (set k for mailbox n with n % sets == k) and a sending window of a few recent counts (the
steady state: every account sent in the last hour); senders are drawn from all of their set's accounts.

CPU by process comes from /proc: this benchmark's process tree (the mail servers and Postwerk's services
are its descendants; processes that exited, such as smtpd after `max_use`, count in their parent's
"exited children") and, on PostgreSQL, the backends of the stack's role. The client's CPU (this process)
is the same work in every variant: it is shown in its own row and included in the total, not subtracted.
"busy, not ours" is what else ran on the machine meanwhile (noise, not part of any figure).
Needs root, Postfix and Dovecot (`make mail-deps`) and, for `postgres`, the PostgreSQL server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import pwd
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import dkim
from imap_logins import PASSWORD, SETS, Parameters
from mail_stacks import (
    Box,
    bench_folder,
    bulk_load,
    floor_stack,
    free_listener,
    postgres_database,
    postwerk_stack,
    process_table,
    settings_for,
    sqlite_database,
)
from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import make_url

from postwerk.domain.dkim import KeyPair, KeyStatus, new_key_pair, new_selector, record_name, record_text
from postwerk.domain.sending_rate import WINDOW_SLOTS, Window, slot_of
from postwerk.mailstack.stack import MailStack, wait_for_port
from postwerk.settings import split_host_port
from postwerk.store.dkim_keys import insert_key_pair
from postwerk.store.tables import domains, sending_windows

BASE_DOMAIN = "submission.bench.example"
DOMAINS = 10
OUTSIDE = "outside.bench.example"
CLIENTS = 20
MESSAGE_BYTES = 10 * 1024
TARGET = 0.8  # Postwerk / floor
LIMIT_TARGET = 0.9  # with the rate-limit service / without: it lowers the rate by less than 10 %
STEP_TIMEOUT = 60.0
DRAIN_TIMEOUT = 300.0
CHUNK = 20_000
SMTP_SINK = "/usr/sbin/smtp-sink"
CLOCK = os.sysconf("SC_CLK_TCK")
SHORT_NAMES = {"cheap": 0, "postwerk": 1, "dear": 2}  # imap_logins.SETS
POSTWERK_SET = SETS[1]
NO_LIMIT = "no limit"


# --- the sink ----------------------------------------------------------------------------------------------


class Sink:
    """Postfix's smtp-sink on 127.0.0.1 as the stack's relay host: counts the messages it received (its
    `-c` counter) and appends them to a dump file, read and removed after each measurement."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        shutil.chown(folder, user="nobody")
        self.dump = folder / "dump"
        self.listener = free_listener()
        self._count = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            # The last argument: the listen backlog.
            [
                SMTP_SINK,
                "-c",
                "-u",
                "nobody",
                "-h",
                "sink.bench.example",
                "-D",
                str(self.dump),
                self.listener,
                "256",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._read, daemon=True).start()
        wait_for_port(self.listener, time.monotonic() + 10)

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        pending = b""
        while chunk := os.read(self._process.stdout.fileno(), 4096):
            pending += chunk
            counters = re.findall(rb"mesg=(\d+)", pending)
            if counters:
                with self._lock:
                    self._count = int(counters[-1])
            pending = pending[-64:]

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def wait_for(self, total: int, timeout: float = DRAIN_TIMEOUT) -> float:
        """Wait until the sink has `total` messages; returns when (perf_counter)."""
        deadline = time.perf_counter() + timeout
        while self.count < total:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the sink has {self.count} of {total} messages after {timeout:.0f} s")
            time.sleep(0.005)
        return time.perf_counter()

    def take(self) -> list[bytes]:
        """The messages received since the last call (dump removed)."""
        time.sleep(0.2)  # the last capture file closes just after the counter moves
        if not self.dump.exists():
            return []
        content = self.dump.read_bytes()
        self.dump.unlink()
        return [part for part in re.split(rb"(?m)^(?=X-Client-Addr: )", content) if part]

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


# --- the client --------------------------------------------------------------------------------------------


class Refused(RuntimeError):
    pass


_BODY = b"".join(
    f"Line {n:04d} of the benchmark message, as a mail client or a web application writes it.\r\n".encode()
    for n in range(MESSAGE_BYTES // 80)
)


def message(sender: str, recipient: str) -> bytes:
    headers = (
        f"From: Bench <{sender}>\r\nTo: <{recipient}>\r\nSubject: submission bench\r\n"
        f"Date: {formatdate(localtime=False)}\r\nMessage-ID: <{uuid.uuid4().hex}@bench.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return headers.encode() + _BODY


async def _reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    lines: list[bytes] = []
    while True:
        line = await asyncio.wait_for(reader.readline(), STEP_TIMEOUT)
        if not line:
            raise ConnectionError("connection closed: " + repr(b"".join(lines)))
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), b"".join(lines)


async def _step(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: bytes, expected: int
) -> None:
    writer.write(command + b"\r\n")
    code, text = await _reply(reader)
    if code != expected:
        raise Refused(f"{command.split(b' ')[0].decode()}: {text.decode(errors='replace').strip()}")


async def send_once(host: str, port: int, tls: ssl.SSLContext, sender: str, recipient: str) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), STEP_TIMEOUT)
    try:
        code, text = await _reply(reader)
        if code != 220:
            raise Refused(f"greeting: {text!r}")
        await _step(reader, writer, b"EHLO client.bench.example", 250)
        await _step(reader, writer, b"STARTTLS", 220)
        await asyncio.wait_for(writer.start_tls(tls), STEP_TIMEOUT)
        await _step(reader, writer, b"EHLO client.bench.example", 250)
        credentials = base64.b64encode(f"\0{sender}\0{PASSWORD}".encode())
        await _step(reader, writer, b"AUTH PLAIN " + credentials, 235)
        await _step(reader, writer, f"MAIL FROM:<{sender}>".encode(), 250)
        await _step(reader, writer, f"RCPT TO:<{recipient}>".encode(), 250)
        await _step(reader, writer, b"DATA", 354)
        await _step(reader, writer, message(sender, recipient) + b".", 250)
        await _step(reader, writer, b"QUIT", 221)
    finally:
        writer.close()
        with suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 5)


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def drive(listener: str, senders: Iterator[str], clients: int, seconds: float) -> int:
    """`clients` concurrent senders for `seconds`; returns the number of messages accepted."""
    host, port = split_host_port(listener)
    tls = client_tls()
    numbers = itertools.count()

    async def run() -> int:
        deadline = time.perf_counter() + seconds
        sent = 0

        async def client() -> None:
            nonlocal sent
            while time.perf_counter() < deadline:
                await send_once(host, port, tls, next(senders), f"r{next(numbers)}@{OUTSIDE}")
                sent += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        return sent

    return asyncio.run(run())


# --- CPU by process ----------------------------------------------------------------------------------------


def _busy_ticks() -> int:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(value) for value in fields]
    return sum(values) - values[3] - values[4]  # all but idle and iowait


def cpu_ticks(database_role: str | None) -> Counter[str]:
    """Ticks by process name of this process's descendants (and of the exited children they reaped), and of
    the PostgreSQL backends of `database_role`."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, process in table.items():
        children.setdefault(process.parent, []).append(pid)
    ticks: Counter[str] = Counter()
    pending = list(children.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        process = table[pid]
        ticks[process.name] += process.ticks
        if process.children_ticks:
            ticks[f"{process.name}: exited children"] += process.children_ticks
        pending += children.get(pid, [])
    if database_role:
        # The title of a backend: "postgres: [cluster name: ]role database client state".
        marker = f" {database_role} ".encode()
        for process in table.values():
            title = b"\0".join(process.command)
            if title.startswith(b"postgres:") and marker in title:
                ticks["postgres (the stack's backends)"] += process.ticks
    return ticks


# --- one measurement ---------------------------------------------------------------------------------------


@dataclass
class Target:
    """Something to send to: a stack's listener, its sink, who sends, and what the sink must see."""

    name: str
    mail: MailStack
    listener: str
    sink: Sink
    senders: dict[Parameters, Iterator[str]]
    signed: bool
    keys: dict[str, tuple[str, KeyPair]] = field(default_factory=dict)  # domain -> selector, key pair
    database_role: str | None = None


@dataclass
class Run:
    messages: int
    accepted_s: float
    sent_s: float
    cpu: dict[str, float]  # seconds by process name
    client_s: float
    busy_s: float  # the whole machine

    @property
    def rate(self) -> float:
        return self.messages / self.sent_s

    def per_message(self, seconds: float) -> float:
        return seconds / self.messages * 1000


def _log_tail(mail: MailStack, lines: int = 30) -> str:
    logs = mail.layout.logs
    path = logs / "postfix.log" if logs else None
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _check(target: Target, received: list[bytes], expected: int) -> None:
    if len(received) != expected:
        raise RuntimeError(f"{target.name}: the sink kept {len(received)} messages, {expected} were sent")
    signed = sum(1 for part in received if re.search(rb"(?mi)^DKIM-Signature:", part))
    if signed != (expected if target.signed else 0):
        raise RuntimeError(f"{target.name}: {signed} of {expected} messages DKIM-signed")
    if target.signed and received:
        sample = received[0].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        records = {
            f"{record_name(selector, domain)}.".encode(): record_text(pair.algorithm, pair.public_key)
            for domain, (selector, pair) in target.keys.items()
        }
        if not dkim.verify(sample, dnsfunc=lambda name, timeout=5: records.get(name, "").encode() or None):
            raise RuntimeError(f"{target.name}: a DKIM signature does not verify")


def measure(target: Target, parameters: Parameters, clients: int, seconds: float, warm_up: float) -> Run:
    senders = target.senders[parameters]
    try:
        # Warm-up: smtpd, cleanup, smtp and the auth workers started, the caches of every service filled.
        base = target.sink.count
        sent = drive(target.listener, senders, clients, warm_up)
        target.sink.wait_for(base + sent)
        target.sink.take()
        base = target.sink.count
        cpu_before, busy_before = cpu_ticks(target.database_role), _busy_ticks()
        client_before = time.process_time()
        started = time.perf_counter()
        sent = drive(target.listener, senders, clients, seconds)
        accepted = time.perf_counter()
        arrived = target.sink.wait_for(base + sent)
        client_after = time.process_time()
        cpu_after, busy_after = cpu_ticks(target.database_role), _busy_ticks()
    except (Refused, OSError, RuntimeError) as error:
        raise RuntimeError(f"{target.name}: {error}\n--- postfix.log\n{_log_tail(target.mail)}") from error
    _check(target, target.sink.take(), sent)
    cpu = {
        name: (cpu_after[name] - cpu_before.get(name, 0)) / CLOCK
        for name in cpu_after
        if cpu_after[name] > cpu_before.get(name, 0)
    }
    return Run(
        sent,
        accepted - started,
        arrived - started,
        cpu,
        client_after - client_before,
        (busy_after - busy_before) / CLOCK,
    )


# --- the stacks --------------------------------------------------------------------------------------------


def account_list(total: int, sets: list[Parameters]) -> list[tuple[str, str]]:
    hashes = {parameters: parameters.hash() for parameters in sets}
    return [(f"u{n}@d{n % DOMAINS}.{BASE_DOMAIN}", hashes[sets[n % len(sets)]]) for n in range(total)]


def sender_cycles(boxes: list[Box], sets: list[Parameters]) -> dict[Parameters, Iterator[str]]:
    """Per parameter set, its accounts' addresses in a random order, over and over."""
    cycles: dict[Parameters, Iterator[str]] = {}
    for index, parameters in enumerate(sets):
        addresses = [box.address for n, box in enumerate(boxes) if n % len(sets) == index]
        random.Random(index).shuffle(addresses)
        cycles[parameters] = itertools.cycle(addresses)
    return cycles


def provision(
    engine: Engine, accounts: list[tuple[str, str]]
) -> tuple[list[Box], dict[str, tuple[str, KeyPair]]]:
    """The mailboxes, a DKIM key for each domain (as `postwerk domain add` makes it) and a sending window
    for each account."""
    boxes = bulk_load(engine, accounts)
    made = datetime.now(UTC)
    keys: dict[str, tuple[str, KeyPair]] = {}
    now_slot = slot_of(time.time())
    generator = random.Random(7)
    with engine.begin() as connection:
        for domain_id, name in connection.execute(select(domains.c.id, domains.c.name_ascii)).all():
            pair, selector = new_key_pair(), new_selector(made, ())
            insert_key_pair(
                connection,
                key_id=str(uuid.uuid4()),
                domain_id=domain_id,
                selector=selector,
                pair=pair,
                status=KeyStatus.ACTIVE,
                made_at=made,
            )
            keys[name] = (selector, pair)
        rows = []
        for box in boxes:
            slots = sorted({now_slot - generator.randrange(1, WINDOW_SLOTS) for _ in range(3)})
            window = Window(tuple((slot, generator.randrange(1, 4)) for slot in slots))
            rows.append({"account_id": box.mailbox_id, "counts": window.encode(), "newest_slot": slots[-1]})
            if len(rows) >= CHUNK:
                connection.execute(insert(sending_windows), rows)
                rows.clear()
        if rows:
            connection.execute(insert(sending_windows), rows)
    return boxes, keys


def _without_limit(listener: str) -> Callable[[MailStack], None]:
    """A copy of the STARTTLS submission service on `listener`, without the rate-limit check at the end of
    DATA (master.cf of the rendered stack, before it starts)."""

    def adjust(mail: MailStack) -> None:
        path = mail.layout.postfix_config / "master.cf"
        text = path.read_text()
        host, port = split_host_port(mail.settings.submission)
        service = re.escape(f"{host}:{port}")
        found = re.search(rf"(?m)^{service} inet[^\n]*\n(?:[ \t]+-o [^\n]*\n)+", text)
        if found is None:
            raise RuntimeError("master.cf has no submission service: the template changed")
        host, port = split_host_port(listener)
        copy, changed = re.subn(r"(?m)^([ \t]+-o smtpd_end_of_data_restrictions=).*$", r"\1", found.group(0))
        copy = copy.replace("syslog_name=postfix/submission\n", "syslog_name=postfix/submission-nolimit\n")
        if changed != 1:
            raise RuntimeError("the submission service has no smtpd_end_of_data_restrictions")
        path.write_text(text + f"{host}:{port}" + copy[found.group(0).index(" inet") :])

    return adjust


@contextmanager
def postwerk_targets(
    kind: str, folder: Path, accounts: list[tuple[str, str]], sets: list[Parameters]
) -> Iterator[tuple[Target, Target]]:
    """Postwerk's stack on `kind` with its sink: (full submission path, the same without the rate limit)."""
    started = time.perf_counter()
    sink = Sink(folder / "sink")
    sink.start()
    no_limit = free_listener()
    try:
        database = (
            postgres_database("tcp" if kind == "postgres-tcp" else "socket")
            if kind.startswith("postgres")
            else _sqlite_engine(folder)
        )
        with database as (engine, url):
            boxes, keys = provision(engine, accounts)
            loaded = time.perf_counter() - started
            settings = settings_for(folder, url, relay_host=sink.listener, relay_tls="none")
            if kind == "sqlite":
                engine.dispose()
            with postwerk_stack(settings, _without_limit(no_limit)) as mail:
                wait_for_port(no_limit, time.monotonic() + 30)
                print(f"  {kind}: {len(boxes):,} accounts loaded in {loaded:.1f} s", flush=True)
                role = make_url(url).username if kind.startswith("postgres") else None
                cycles = sender_cycles(boxes, sets)
                full = Target(kind, mail, settings.submission, sink, cycles, True, keys, role)
                yield full, Target(f"{kind} {NO_LIMIT}", mail, no_limit, sink, cycles, True, keys, role)
    finally:
        sink.stop()


@contextmanager
def _sqlite_engine(folder: Path) -> Iterator[tuple[Engine, str | None]]:
    with sqlite_database(settings_for(folder)) as engine:
        yield engine, None


@contextmanager
def floor_target(folder: Path, accounts: list[tuple[str, str]], sets: list[Parameters]) -> Iterator[Target]:
    started = time.perf_counter()
    sink = Sink(folder / "sink")
    sink.start()
    boxes = [Box(address, f"floor-{n:06d}", hashed) for n, (address, hashed) in enumerate(accounts)]
    domain_names = sorted({address.rpartition("@")[2] for address, _ in accounts})
    settings = settings_for(folder, relay_host=sink.listener, relay_tls="none")
    try:
        with floor_stack(settings, boxes, domain_names, submission=True) as mail:
            print(
                f"  floor: {len(boxes):,} accounts in passwd-files and hash maps "
                f"({time.perf_counter() - started:.1f} s)",
                flush=True,
            )
            yield Target("floor", mail, settings.submission, sink, sender_cycles(boxes, sets), False)
    finally:
        sink.stop()


# --- the report --------------------------------------------------------------------------------------------


def _median_rate(runs: list[Run]) -> float:
    return statistics.median(run.rate for run in runs)


def _ratio(ours: list[Run], theirs: list[Run]) -> tuple[float, float, float]:
    pairs = [a.rate / b.rate for a, b in zip(ours, theirs, strict=True)]
    return _median_rate(ours) / _median_rate(theirs), min(pairs), max(pairs)


def _verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "FAIL"


def report(
    results: dict[str, dict[Parameters, list[Run]]],
    kinds: list[str],
    sets: list[Parameters],
    header: str,
) -> None:
    print(f"\n{header}")
    summary: list[tuple[str, dict[str, str]]] = []
    for kind in [k for k in kinds if k != "floor"] or ["floor"]:
        floor_name = f"floor ({kind})" if kind != "floor" else "floor"
        has_floor = "floor" in kinds
        print(f"\n{kind}: messages/s (median; ratio: of the medians, min-max of the rounds)")
        print(
            f"{'Argon2id':<24}{'verify ms':>10}{'floor':>9}{'Postwerk':>10}  {'/ floor':<19}"
            f"{'>= ' + str(TARGET):<9}{NO_LIMIT:>9}  {'with / without':<19}>= {LIMIT_TARGET}"
        )
        for parameters in sets:
            floor_runs = results.get(floor_name, {}).get(parameters, [])
            cells = f"{parameters.label:<24}{parameters.verify_ms():>10.1f}"
            cells += f"{_median_rate(floor_runs):>9.1f}" if floor_runs else f"{'-':>9}"
            if kind == "floor":
                print(cells)
                continue
            ours = results[kind][parameters]
            free = results[f"{kind} {NO_LIMIT}"][parameters]
            cells += f"{_median_rate(ours):>10.1f}  "
            row: dict[str, str] = {}
            if has_floor:
                ratio, low, high = _ratio(ours, floor_runs)
                row["floor"] = f"{ratio:.2f} {_verdict(ratio, TARGET)}"
                cells += f"{ratio:.2f} ({low:.2f}-{high:.2f})".ljust(19) + _verdict(ratio, TARGET).ljust(9)
            else:
                cells += f"{'-':<19}{'':<9}"
            limit, low, high = _ratio(ours, free)
            row["limit"] = f"{limit:.2f} {_verdict(limit, LIMIT_TARGET)}"
            cells += f"{_median_rate(free):>9.1f}  " + f"{limit:.2f} ({low:.2f}-{high:.2f})".ljust(19)
            cells += _verdict(limit, LIMIT_TARGET)
            print(cells)
            summary.append((f"{kind}|{parameters.label}", row))
        _cpu_table(results, kind, floor_name, sets)
    _summary(summary, kinds, sets)


def _cpu_table(
    results: dict[str, dict[Parameters, list[Run]]], kind: str, floor_name: str, sets: list[Parameters]
) -> None:
    parameters = POSTWERK_SET if POSTWERK_SET in sets else sets[0]
    columns = [name for name in dict.fromkeys((floor_name, kind, f"{kind} {NO_LIMIT}")) if name in results]
    last = {name: results[name][parameters][-1] for name in columns}
    names: Counter[str] = Counter()
    for run in last.values():
        names.update({name: seconds / run.messages for name, seconds in run.cpu.items()})
    print(
        f"\nCPU ms per message by process, {parameters.label}, last round ('X: exited children': processes"
        " of X that ended meanwhile, such as smtpd after max_use)"
    )
    print(f"{'process':<40}" + "".join(f"{name:>18}" for name in columns))
    for name, _ in names.most_common(14):
        print(
            f"{name:<40}"
            + "".join(f"{last[c].per_message(last[c].cpu.get(name, 0.0)):>18.2f}" for c in columns)
        )
    rows = {
        "client (this process; same work in all)": lambda run: run.client_s,
        "total, client included": lambda run: sum(run.cpu.values()) + run.client_s,
        "busy, not ours (other load; noise)": lambda run: max(
            0.0, run.busy_s - sum(run.cpu.values()) - run.client_s
        ),
    }
    for label, value in rows.items():
        print(f"{label:<40}" + "".join(f"{last[c].per_message(value(last[c])):>18.2f}" for c in columns))
    print(
        f"{'accepted/s (client side)':<40}"
        + "".join(f"{last[c].messages / last[c].accepted_s:>18.1f}" for c in columns)
    )


def _summary(rows: list[tuple[str, dict[str, str]]], kinds: list[str], sets: list[Parameters]) -> None:
    databases = [kind for kind in kinds if kind != "floor"]
    if not databases:
        return
    found = dict(rows)
    print("\ntargets" + " " * 61 + "".join(f"{kind:>12}" for kind in databases))
    for parameters in sets:
        mark = " (Postwerk's)" if parameters is POSTWERK_SET else ""
        short = parameters.label.split(" (")[0]
        for key, label in (
            ("floor", f"submission / passwd-file floor >= {TARGET}, {short}{mark}"),
            ("limit", f"rate-limit service costs < 10 % (with/without >= {LIMIT_TARGET}), {short}"),
        ):
            cells = [found.get(f"{kind}|{parameters.label}", {}).get(key, "-") for kind in databases]
            if any(cell != "-" for cell in cells):
                print(f"{label:<68}" + "".join(f"{cell:>12}" for cell in cells))


# --- main --------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="2,000 accounts, Postwerk's parameters, 5 s, one round"
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--only", choices=["floor", "sqlite", "postgres", "postgres-tcp"], action="append")
    parser.add_argument("--parameters", choices=list(SHORT_NAMES), action="append")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the mail servers need root", file=sys.stderr)
        return 2
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        print("smtp-sink runs as the user nobody, which does not exist", file=sys.stderr)
        return 2
    if args.quick:
        total, seconds, rounds, warm_up = 2_000, 5.0, 1, 1.0
        chosen = args.parameters or ["postwerk"]
    else:
        total, seconds, rounds, warm_up = args.accounts, args.seconds, args.rounds, 2.0
        chosen = args.parameters or list(SHORT_NAMES)
    sets = [SETS[SHORT_NAMES[name]] for name in SHORT_NAMES if name in chosen]
    kinds = args.only or ["floor", "sqlite", "postgres"]
    accounts = account_list(total, sets)
    header = (
        f"SMTP submission: {total:,} accounts, {args.clients} clients, STARTTLS + AUTH PLAIN, a new "
        f"connection per message, {MESSAGE_BYTES // 1024} KB to an outside address via smtp-sink; "
        f"{seconds:.0f} s x {rounds} round(s) per measurement; {os.cpu_count()} CPUs"
    )
    print(header, flush=True)
    results: dict[str, dict[Parameters, list[Run]]] = {}

    def record(target: Target, parameters: Parameters, floor_label: str | None = None) -> None:
        run = measure(target, parameters, args.clients, seconds, warm_up)
        name = floor_label or target.name
        results.setdefault(name, {}).setdefault(parameters, []).append(run)
        print(
            f"    {name:<20} {parameters.label:<24} {run.messages:>5} messages, {run.rate:6.1f}/s "
            f"(accepted {run.messages / run.accepted_s:6.1f}/s)",
            flush=True,
        )

    with bench_folder("postwerk-bench-submission-") as folder:
        floor_or_none = floor_target(folder / "floor", accounts, sets) if "floor" in kinds else _nothing()
        with floor_or_none as floor:
            databases = [kind for kind in kinds if kind != "floor"]
            if not databases and floor is not None:
                for _ in range(rounds):
                    for parameters in sets:
                        record(floor, parameters)
            for kind in databases:
                with postwerk_targets(kind, folder / kind, accounts, sets) as (full, free):
                    for number in range(rounds):
                        for parameters in sets:
                            order: list[tuple[Target, str | None]] = [(full, None), (free, None)]
                            if floor is not None:
                                order.append((floor, f"floor ({kind})"))
                            shift = number % len(order)
                            for target, label in order[shift:] + order[:shift]:
                                record(target, parameters, label)
    report(results, kinds, sets, header)
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    sys.exit(main())
