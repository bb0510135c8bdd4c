"""Inbound mail, end to end: the rate at which mail accepted over SMTP becomes visible in the mailboxes
(a new file in each recipient's Maildir, where IMAP reads it; checked over IMAP afterwards), for 20
concurrent senders of 10 KB messages driven by Postfix's `smtp-source`, each message to another of the
provisioned mailboxes (`-N`), with 100,000 addresses bulk-loaded, against:

  floor     the same Postfix + Dovecot configuration without Postwerk: static hash maps, a passwd-file,
            no policy service, no usage dictionary (Dovecot's quota accounting stays, as on any Dovecot
            that keeps quotas); the same pipe(8) to dovecot-lda (baseline)
  sqlite    Postwerk's stack on SQLite (SQL maps via proxymap, policy service, usage dictionary)
  postgres  the same on PostgreSQL (a fresh schema), reached through its Unix socket, as an installation
            with the database on the same machine connects
  postgres-tcp  the same through TCP on 127.0.0.1:5432, as mail nodes reach a database server of their
            own (not run unless asked for with --only)

    .venv/bin/python bench/smtp_inbound.py [--quick] [--messages N] [--addresses N] [--bursts N]

The stacks run side by side, each with its own addresses, and take the messages in alternating bursts
(`--bursts`, the order turning by one each time), each burst to mailboxes of its own (`{n}u{burst}@`): the
machine drifts over minutes (seen: the same floor at 137 msg/s and, minutes later, 76), and alternating
bursts let the drift fall on every stack alike.

`--database-cpu N` puts the PostgreSQL server on CPU N and everything else (the stacks, smtp-source, this
script) on the other CPUs, as in production, where mail nodes reach a database server of their own: the
floor and the stacks then have the same CPUs for their mail servers, and PostgreSQL's work is not taken from
them. Without it PostgreSQL shares every CPU with the mail servers, as on a single machine (whose default
database is SQLite). The server's processes get every CPU back at the end.

Prints the rate of each (all its messages over all its bursts' time), its ratio to the floor measured in
the same run (target >= 0.9) with the spread of the bursts' ratios and a 95 % interval of the ratio
(bootstrap over the bursts: "undecided" where it holds the target), the CPU each stack adds to the floor's
per message against what the target allows (where the CPUs are the limit, the ratio is the floor's CPU a
message over the stack's), and where the CPU went (per message, by process name, from /proc, summed over
the bursts).
Needs root, Postfix and Dovecot (`make mail-deps`) and, for `postgres`, the PostgreSQL server.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from mail_stacks import (
    Box,
    Process,
    bench_folder,
    bulk_load,
    floor_stack,
    postgres_database,
    postwerk_stack,
    process_table,
    settings_for,
    sqlite_database,
)

from postwerk.domain.passwords import hash_password
from postwerk.mailstack.stack import MailStack
from postwerk.settings import Settings, split_host_port

DOMAIN = "inbound.bench.example"
SENDERS = 20
MESSAGE_BYTES = 10 * 1024
PASSWORD = "bench password"
SMTP_TIMEOUT = 600.0
DELIVERY_TIMEOUT = 600.0
WARM_UP = 40
TARGET = 0.9
CLOCK = os.sysconf("SC_CLK_TCK")


# /proc/stat's fields of the machine's time (guest time is in user already). Interrupt and steal time
# belong to no process: they are rows of their own in the report, apart from what no process accounts for.
_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_UNOWNED = ("irq", "softirq", "steal")


def _machine_ticks() -> dict[str, int]:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return dict(zip(_STAT_FIELDS, (int(value) for value in fields), strict=False))


def _busy(ticks: dict[str, int]) -> int:
    return sum(value for name, value in ticks.items() if name not in {"idle", "iowait"})


def _processes() -> dict[int, Process]:
    """Every live process by pid, named for the report: the kernel's workers in one bucket (they rename
    themselves by the work they do), PostgreSQL's processes by their part."""
    table = process_table()
    for pid, process in table.items():
        if process.name.startswith("kworker/"):
            table[pid] = replace(process, name="kworker (kernel workers)")
        elif process.name == "postgres":
            table[pid] = replace(process, name=_postgres_part(process.command[0].decode(errors="replace")))
    return table


def _cpu_by_name(before: dict[int, Process], after: dict[int, Process]) -> Counter[str]:
    """CPU ticks used between two snapshots, by process name ('X: exited children': what X's children that
    ended meanwhile used, such as the LDAs under pipe). A process that ended meanwhile is charged to its
    parent's children for its whole life, so what it had used before the first snapshot is taken off
    there again: Postfix's delivery agents end after their hundredth delivery, and their parent would
    otherwise be charged every LDA they ever ran."""
    used: Counter[str] = Counter()
    for pid, now in after.items():
        then = before.get(pid)
        if then is not None and then.name != now.name:
            then = None  # a new program in that pid (exec, or the pid used again)
        used[now.name] += now.ticks - (then.ticks if then else 0)
        children = now.children_ticks - (then.children_ticks if then else 0)
        if children:
            used[f"{now.name}: exited children"] += children
    for pid, then in before.items():
        parent = after.get(then.parent)
        if pid not in after and parent is not None:
            used[f"{parent.name}: exited children"] -= then.ticks + then.children_ticks
    return used


def _postgres_part(title: str) -> str:
    """PostgreSQL's processes by their part: its title says `postgres: 15/main: walwriter` for a helper,
    `postgres: 15/main: <role> <database> <client> <state>` for a client's backend."""
    parts = title.split(": ")
    if len(parts) < 3:
        return "postgres"
    role = parts[2].split()
    if len(role) >= 3 and ("(" in role[2] or role[2] == "[local]"):
        return "postgres: backends"
    return f"postgres: {' '.join(role[:2]) if role else 'server'}"


@dataclass
class Run:
    name: str
    messages: int
    accepted_s: float
    visible_s: float
    cpu_s: float
    cpu_by_name: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.visible_s


def smtp_source(settings: Settings, recipient: str, messages: int, numbered: bool) -> None:
    host, port = split_host_port(settings.smtp)
    command = ["/usr/sbin/smtp-source", "-s", str(SENDERS), "-m", str(messages), "-l", str(MESSAGE_BYTES)]
    command += ["-N"] if numbered else []
    command += ["-f", "sender@outside.example", "-t", recipient, "-M", "client.bench.example"]
    done = subprocess.run(
        [*command, f"{host}:{port}"], capture_output=True, text=True, timeout=SMTP_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {done.stderr.strip()}")


def _wait_delivered(folders: list[Path], started: float) -> None:
    pending = list(folders)
    while pending:
        pending = [folder for folder in pending if not (folder.is_dir() and any(os.scandir(folder)))]
        if pending:
            if time.perf_counter() - started > DELIVERY_TIMEOUT:
                raise RuntimeError(f"{len(pending)} of {len(folders)} messages not delivered in time")
            time.sleep(0.05)


def _check_over_imap(settings: Settings, boxes: list[Box]) -> None:
    """A few mailboxes, over IMAP with their password: the message is in the INBOX."""
    host, port = split_host_port(settings.imap)
    for box in boxes:
        # From 127.0.0.1 to 127.0.0.1 Dovecot counts the connection as secured: no TLS needed here.
        client = imaplib.IMAP4(host, port, timeout=30)
        try:
            credentials = f"\0{box.address}\0{PASSWORD}".encode()
            client.authenticate("PLAIN", lambda _challenge, c=credentials: c)
            status, data = client.select("INBOX", readonly=True)
            if status != "OK" or int(data[0] or 0) < 1:
                raise RuntimeError(f"{box.address}: the message is not in the INBOX over IMAP")
        finally:
            client.logout()


def warm_up(mail: MailStack, box: Box) -> None:
    """Every process of the path started once (to a mailbox outside the measured ones)."""
    smtp_source(mail.settings, box.address, WARM_UP, numbered=False)
    _wait_delivered([mail.layout.boxes / box.mailbox_id / "Maildir" / "new"], time.perf_counter())


def measure(name: str, mail: MailStack, boxes: list[Box], burst: int) -> Run:
    """One burst: message n to `{n}u{burst}@DOMAIN`, which is `boxes[n - 1]`."""
    settings = mail.settings
    messages = len(boxes)
    folders = [mail.layout.boxes / box.mailbox_id / "Maildir" / "new" for box in boxes]
    # Every burst starts with nothing left to write back (the bulk load, the other stacks' files): the
    # kernel's writeback would otherwise run during whichever burst comes next.
    os.sync()
    time.sleep(0.5)
    processes_before, machine_before = _processes(), _machine_ticks()
    started = time.perf_counter()
    # smtp-source -N puts the message's number in front of the recipient: "{n}" + "u{burst}@DOMAIN".
    smtp_source(settings, f"u{burst}@{DOMAIN}", messages, numbered=True)
    accepted = time.perf_counter() - started
    _wait_delivered(folders, started)
    visible = time.perf_counter() - started
    processes_after, machine_after = _processes(), _machine_ticks()
    _check_over_imap(settings, [boxes[0], boxes[messages // 2], boxes[messages - 1]])
    used = _cpu_by_name(processes_before, processes_after)
    by_name = {process: ticks / CLOCK for process, ticks in used.items() if ticks > 0}
    for field_name in _UNOWNED:
        by_name[f"({field_name} time)"] = (machine_after[field_name] - machine_before[field_name]) / CLOCK
    busy = _busy(machine_after) - _busy(machine_before)
    return Run(name, messages, accepted, visible, busy / CLOCK, by_name)


def addresses(total: int, bursts: int, per_burst: int) -> list[tuple[str, str]]:
    """The measured mailboxes first, burst by burst (`{n}u{burst}@`), then others up to `total`."""
    password_hash = hash_password(PASSWORD)
    measured = [
        f"{number}u{burst}@{DOMAIN}" for burst in range(1, bursts + 1) for number in range(1, per_burst + 1)
    ]
    others = [f"{number}f@{DOMAIN}" for number in range(1, total - len(measured) + 1)]
    return [(address, password_hash) for address in measured + others]


@contextmanager
def prepared(kind: str, folder: Path, wanted: list[tuple[str, str]]) -> Iterator[tuple[MailStack, list[Box]]]:
    total = len(wanted)
    started = time.perf_counter()
    if kind.startswith("postgres"):
        with postgres_database("tcp" if kind == "postgres-tcp" else "socket") as (engine, url):
            boxes = bulk_load(engine, wanted)
            loaded = time.perf_counter() - started
            settings = settings_for(folder, url)
            with postwerk_stack(settings) as mail:
                print(f"  {kind}: {total:,} addresses loaded in {loaded:.1f} s", flush=True)
                yield mail, boxes
        return
    settings = settings_for(folder)
    if kind == "sqlite":
        with sqlite_database(settings) as engine:
            boxes = bulk_load(engine, wanted)
        loaded = time.perf_counter() - started
        with postwerk_stack(settings) as mail:
            print(f"  {kind}: {total:,} addresses loaded in {loaded:.1f} s", flush=True)
            yield mail, boxes
        return
    boxes = [
        Box(address, f"floor-{number:06d}", password_hash)
        for number, (address, password_hash) in enumerate(wanted, 1)
    ]
    with floor_stack(settings, boxes, [DOMAIN]) as mail:
        print(
            f"  {kind}: {total:,} addresses in hash maps and passwd-files "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        yield mail, boxes


def run_bursts(kinds: list[str], total: int, bursts: int, per_burst: int) -> list[dict[str, Run]]:
    wanted = addresses(total, bursts, per_burst)
    with ExitStack() as running:
        ready = {}
        for kind in kinds:
            folder = running.enter_context(bench_folder(f"postwerk-bench-{kind}-"))
            ready[kind] = running.enter_context(prepared(kind, folder, wanted))
        for mail, boxes in ready.values():
            warm_up(mail, boxes[-1])
        rounds = []
        for burst in range(1, bursts + 1):
            turn = (burst - 1) % len(kinds)
            runs = {}
            for kind in kinds[turn:] + kinds[:turn]:
                mail, boxes = ready[kind]
                measured = boxes[(burst - 1) * per_burst : burst * per_burst]
                runs[kind] = run = measure(kind, mail, measured, burst)
                print(
                    f"  burst {burst} {kind}: {run.messages} messages accepted in {run.accepted_s:.1f} s, "
                    f"visible after {run.visible_s:.1f} s: {run.rate:.1f} msg/s",
                    flush=True,
                )
            rounds.append(runs)
    return rounds


RESAMPLES = 2000


def ratio_interval(rounds: list[dict[str, Run]], kind: str) -> tuple[float, float]:
    """A 95 % interval of `kind`'s ratio to the floor, by resampling the bursts (bootstrap): the machine's
    drift makes bursts differ by ±15 %, so a ratio near the target needs this to say whether the run
    decides anything ("undecided" in the report when the interval holds the target). Seeded: the same
    bursts give the same interval."""
    chooser = random.Random(0)
    ratios = []
    for _ in range(RESAMPLES):
        sample = [chooser.choice(rounds) for _ in rounds]
        stack = sum(r[kind].messages for r in sample) / sum(r[kind].visible_s for r in sample)
        floor = sum(r["floor"].messages for r in sample) / sum(r["floor"].visible_s for r in sample)
        ratios.append(stack / floor)
    ratios.sort()
    return ratios[int(RESAMPLES * 0.025)], ratios[int(RESAMPLES * 0.975) - 1]


def report(rounds: list[dict[str, Run]], kinds: list[str]) -> None:
    def total(kind: str, value: Callable[[Run], float]) -> float:
        return sum(value(r[kind]) for r in rounds)

    def rate(kind: str) -> float:
        return total(kind, lambda run: run.messages) / total(kind, lambda run: run.visible_s)

    floor = rate("floor") if "floor" in kinds else None
    print(
        f"\n{len(rounds)} burst(s) per stack, alternating; {SENDERS} senders, {MESSAGE_BYTES // 1024} KB "
        f"messages, {os.cpu_count()} CPUs"
    )
    print(
        f"{'stack':<14}{'msg/s':>9}{'accepted/s':>12}{'CPU ms/msg':>12}  ratio to floor  target >= {TARGET}"
    )

    def cpu_per_message(kind: str) -> float:
        return total(kind, lambda run: run.cpu_s) / total(kind, lambda run: run.messages) * 1000

    for kind in kinds:
        messages = total(kind, lambda run: run.messages)
        accepted = messages / total(kind, lambda run: run.accepted_s)
        cpu = cpu_per_message(kind)
        verdict = ""
        if floor and kind != "floor":
            ratios = [r[kind].rate / r["floor"].rate for r in rounds]
            low, high = ratio_interval(rounds, kind)
            spread = f"bursts {min(ratios):.2f}-{max(ratios):.2f}; 95 % {low:.2f}-{high:.2f}"
            verdict = f"{rate(kind) / floor:.2f} ({spread})  "
            verdict += "PASS" if rate(kind) / floor >= TARGET else "FAIL"
            if low < TARGET <= high:
                verdict += ", undecided"
        print(f"{kind:<14}{rate(kind):>9.1f}{accepted:>12.1f}{cpu:>12.1f}  {verdict}")
    if floor and len(kinds) > 1:
        # Where the CPUs are the limit, a stack's rate is the floor's times the floor's CPU a message over
        # its own: what a stack adds says how far it is from the target in the parts it can change.
        floor_cpu = cpu_per_message("floor")
        added = [f"{kind} {cpu_per_message(kind) - floor_cpu:+.2f}" for kind in kinds if kind != "floor"]
        print(
            f"CPU added to the floor's {floor_cpu:.2f} ms a message (the target allows "
            f"{floor_cpu / TARGET - floor_cpu:.2f} ms where the CPUs are the limit): {', '.join(added)}"
        )
    print("\nCPU ms per message by process (all bursts; 'X: exited children' = what X's exited children")
    print("used; '(irq|softirq|steal time)' = the machine's time in interrupts or taken by its host;")
    print("'other' = what no process accounts for (a process and its parent both ended); rows under 0.02 ms")
    print("are left out of the table, not out of the totals)")
    by_name: dict[str, Counter[str]] = {kind: Counter() for kind in kinds}
    for runs in rounds:
        for kind in kinds:
            by_name[kind].update(runs[kind].cpu_by_name)
    names: Counter[str] = Counter()
    for kind in kinds:
        names.update(by_name[kind])

    def per_message(kind: str, name: str) -> float:
        return by_name[kind].get(name, 0.0) / total(kind, lambda run: run.messages) * 1000

    # Every process that cost any stack 0.02 ms a message or more: the differences between stacks are
    # often in the small ones (proxymap, Dovecot's auth), which a fixed number of rows would leave out.
    top = [
        name
        for name, _ in names.most_common()
        if name.startswith("postwerk") or max(per_message(kind, name) for kind in kinds) >= 0.02
    ]
    width = max(10, *(len(kind) + 2 for kind in kinds))
    print(f"{'process':<34}" + "".join(f"{kind:>{width}}" for kind in kinds))
    for name in top:
        cells = "".join(f"{per_message(kind, name):>{width}.2f}" for kind in kinds)
        print(f"{name:<34}{cells}")

    def other(kind: str) -> float:
        unnamed = total(kind, lambda run: run.cpu_s) - sum(by_name[kind].values())
        return unnamed / total(kind, lambda run: run.messages) * 1000

    others = "".join(f"{other(kind):>{width}.2f}" for kind in kinds)
    print(f"{'other':<34}{others}")


def _postgres_server_pids() -> list[int]:
    """The PostgreSQL server's processes (postmaster, helpers, backends): what its backends fork from
    inherits the CPUs given to the postmaster."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            if stat[stat.index("(") + 1 : stat.rindex(")")] == "postgres":
                pids.append(int(entry.name))
    return pids


def _set_cpus(pids: list[int], cpus: set[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):  # a backend that ended meanwhile
            os.sched_setaffinity(pid, cpus)


@contextmanager
def database_on_its_own_cpu(cpu: int | None) -> Iterator[None]:
    """PostgreSQL on `cpu`, this process (and so every stack it starts) on the others; all back after."""
    if cpu is None:
        yield
        return
    every = os.sched_getaffinity(0)
    if cpu not in every or len(every) < 2:
        raise SystemExit(f"--database-cpu {cpu}: the CPUs here are {sorted(every)}; two at least are needed")
    server = _postgres_server_pids()
    if not server:
        raise SystemExit("--database-cpu: no PostgreSQL server process found")
    _set_cpus(server, {cpu})
    os.sched_setaffinity(0, every - {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, every)
        _set_cpus(_postgres_server_pids(), every)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 addresses, 3 bursts of 100 messages")
    parser.add_argument("--addresses", type=int, default=100_000)
    # 24 bursts: their 95 % interval is about ±0.02 wide, which decides a ratio near the target (8: ±0.045).
    parser.add_argument("--messages", type=int, default=6_000, help="per stack, over all bursts")
    parser.add_argument("--bursts", type=int, default=24)
    parser.add_argument("--only", choices=["floor", "sqlite", "postgres", "postgres-tcp"], action="append")
    parser.add_argument(
        "--database-cpu", type=int, help="PostgreSQL on this CPU, the mail servers on the others"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the mail servers need root", file=sys.stderr)
        return 2
    total, messages, bursts = (10_000, 300, 3) if args.quick else (args.addresses, args.messages, args.bursts)
    per_burst = max(1, min(messages // bursts, (total - 1) // bursts))  # one address left for the warm-up
    kinds = args.only or ["floor", "sqlite", "postgres"]
    print(f"{total:,} addresses per stack; {bursts} bursts of {per_burst} messages per stack", flush=True)
    with database_on_its_own_cpu(args.database_cpu):
        if args.database_cpu is not None:
            mail = sorted(os.sched_getaffinity(0))
            print(f"PostgreSQL on CPU {args.database_cpu}; the mail servers on CPU(s) {mail}", flush=True)
        rounds = run_bursts(kinds, total, bursts, per_burst)
    report(rounds, kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
