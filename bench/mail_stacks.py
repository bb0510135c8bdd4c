"""Shared by the mail benchmarks (`smtp_inbound.py`, `imap_logins.py`, `smtp_submission.py`): throw-away
data folders the mail users can enter, addresses bulk-loaded with SQL (not through the API), Postwerk's own
stack on SQLite or PostgreSQL, and the floor: the same Postfix and Dovecot configuration with Postwerk taken
out (static hash maps, a passwd-file, no policy service, no usage or login dictionary), delivering by the
same pipe to dovecot-lda.

Not a benchmark itself. Needs root (the mail servers do) and Postfix + Dovecot (`make mail-deps`).
"""

from __future__ import annotations

import grp
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bulk_rows import analyze, domain_row, mailbox_row, project_row, store_documents
from sqlalchemy import Engine, insert

from postwerk.loopback import free_loopback_port
from postwerk.mailstack.layout import DOVECOT, MAILBOX_DOMAIN, POSTFIX
from postwerk.mailstack.stack import MailStack, wait_for_port
from postwerk.mailstack.supervisor import ChildSpec, Supervisor
from postwerk.settings import Settings
from postwerk.store.scratch import scratch_postgres_role, scratch_sqlite, through_socket
from postwerk.store.tables import domains, mail_addresses, projects

# --- CPU of processes, from /proc --------------------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    name: str  # the kernel's; Postwerk's services (all python3) by their module
    parent: int
    ticks: int  # user + system
    children_ticks: int  # what its exited children used, once it waited for them
    command: list[bytes]  # the command line's arguments


def process_table() -> dict[int, Process]:
    """Every live process, by pid."""
    table: dict[int, Process] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            command = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        if name.startswith("python") and b"-m" in command:
            name = command[command.index(b"-m") + 1].decode()
        table[int(entry.name)] = Process(
            name, int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14]), command
        )
    return table


POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CHUNK = 20_000
READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class Box:
    address: str
    mailbox_id: str
    password_hash: str


def free_listener() -> str:
    return f"127.0.0.1:{free_loopback_port()}"


@contextmanager
def bench_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder the mail servers' users can pass (pytest's and mkdtemp's defaults are 0700);
    always removed."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def settings_for(folder: Path, database_url: str | None = None, **overrides: object) -> Settings:
    """Every listener on a free loopback port (submission too: two stacks side by side would otherwise both
    take the default 127.0.0.1:5870, and the second Postfix would not start); `overrides`: other settings."""
    return Settings(
        data_dir=folder / "data",
        database_url=database_url,
        smtp=free_listener(),
        submission=free_listener(),
        submissions=free_listener(),
        imap=free_listener(),
        imaps=free_listener(),
        pop3=free_listener(),
        pop3s=free_listener(),
        reinject=free_listener(),
        mail_hostname="mx.bench.example",
        **overrides,
    )


def sqlite_database(settings: Settings) -> AbstractContextManager[Engine]:
    """The migrated SQLite database of `settings` (in its data folder)."""
    return scratch_sqlite(settings.data_dir)


POSTGRES_VIA = ("socket", "tcp")


@contextmanager
def postgres_database(via: str = "socket") -> Iterator[tuple[Engine, str]]:
    """A fresh migrated schema and a URL for the mail servers to reach it (store.scratch): through the
    server's Unix socket (`via="socket"`, as an installation with PostgreSQL on the same machine connects)
    or TCP on 127.0.0.1 (`"tcp"`, as mail nodes reach a database server of their own)."""
    with scratch_postgres_role(POSTGRES_URL, prefix="pw_mailbench") as (engine, url):
        yield engine, through_socket(url, engine) if via == "socket" else url


def bulk_load(engine: Engine, addresses: list[tuple[str, str]]) -> list[Box]:
    """Mailboxes for (address, password hash) pairs, all in one project (lower-case ASCII addresses; one
    row per domain). Returns them with their ids, in the given order."""
    now = datetime.now(UTC)
    project_id = str(uuid.uuid4())
    domain_ids: dict[str, str] = {}
    boxes: list[Box] = []
    rows: list[dict[str, object]] = []
    with engine.begin() as connection:
        connection.execute(
            insert(projects), [project_row(project_id, f"p-{secrets.token_hex(3)}", "mail bench", now)]
        )
        for address, password_hash in addresses:
            local, _, domain = address.rpartition("@")
            if domain not in domain_ids:
                domain_ids[domain] = str(uuid.uuid4())
                connection.execute(insert(domains), [domain_row(domain_ids[domain], project_id, domain, now)])
            mailbox_id = str(uuid.uuid4())
            rows.append(
                mailbox_row(
                    mailbox_id,
                    project_id,
                    domain_ids[domain],
                    local,
                    domain,
                    password_hash,
                    now,
                    spam_active=False,
                )
            )
            boxes.append(Box(address, mailbox_id, password_hash))
            if len(rows) >= CHUNK:
                connection.execute(insert(mail_addresses), rows)
                rows.clear()
        if rows:
            connection.execute(insert(mail_addresses), rows)
    store_documents(engine)
    analyze(engine)
    return boxes


@contextmanager
def postwerk_stack(
    settings: Settings, adjust: Callable[[MailStack], None] | None = None
) -> Iterator[MailStack]:
    """Postwerk's own Postfix and Dovecot with its services, as `postwerk serve` runs them; `adjust` may
    change the rendered configuration before the servers start (a benchmark's extra listener)."""
    mail = MailStack(settings)
    try:
        mail.prepare()
        if adjust is not None:
            adjust(mail)
        mail.start()
        mail.wait_ready(READY_TIMEOUT)
        yield mail
    finally:
        mail.stop()


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=COMMAND_TIMEOUT)


def _floor_postfix(main_cf: str, maps: Path) -> str:
    """Postwerk's main.cf with its SQL maps, policy service and SRS pass taken out."""
    replacements = {
        "virtual_alias_domains": f"$myhostname, hash:{maps}/domains",
        "virtual_alias_maps": f"hash:{maps}/routes",
        "smtpd_recipient_restrictions": "reject_non_fqdn_recipient, reject_unlisted_recipient, permit",
        "sender_dependent_default_transport_maps": "",
    }
    for name, value in replacements.items():
        main_cf, count = re.subn(rf"^{name} = .*$", f"{name} = {value}", main_cf, flags=re.MULTILINE)
        if count != 1 and value:
            raise RuntimeError(f"main.cf has no single {name} line: the template changed")
    return main_cf


def _floor_submission_postfix(main_cf: str, maps: Path) -> str:
    """The submission services' checks without Postwerk: a hash sender-login map (each address owned by its
    mailbox, as the SASL login name Dovecot answers), no socketmap for disabled sending, no rate-limit
    service at the end of DATA."""
    main_cf, count = re.subn(
        r"^smtpd_sender_login_maps = .*$",
        f"smtpd_sender_login_maps = hash:{maps}/senders",
        main_cf,
        flags=re.MULTILINE,
    )
    main_cf, restrictions = re.subn(
        r"^(postwerk_submission_relay_restrictions = )check_sasl_access [^,]+, ",
        r"\1",
        main_cf,
        flags=re.MULTILINE,
    )
    main_cf, end_of_data = re.subn(
        r"^postwerk_submission_end_of_data_restrictions = .*$",
        "postwerk_submission_end_of_data_restrictions =",
        main_cf,
        flags=re.MULTILINE,
    )
    if (count, restrictions, end_of_data) != (1, 1, 1):
        raise RuntimeError("main.cf's submission checks are not as expected: the template changed")
    return main_cf


def _floor_submission_master(master_cf: str) -> str:
    """master.cf's submission services without the milter (header From: check, DKIM signing)."""
    master_cf, count = re.subn(r"^(\s+-o smtpd_milters=).*$", r"\1", master_cf, flags=re.MULTILINE)
    if count != 2:
        raise RuntimeError("master.cf has no two smtpd_milters lines: the template changed")
    return master_cf


def _floor_dovecot(conf: str, passwd: Path, users: Path) -> str:
    """Postwerk's dovecot.conf with a passwd-file passdb and userdb, and Dovecot's own quota accounting (the
    quota plugin's `count` backend: usage from the indexes) instead of Postwerk's usage dictionary: any
    Dovecot that keeps mailbox quotas runs one or the other, with or without Postwerk."""
    conf = re.sub(
        r"^passdb \{.*?^\}",
        f"passdb {{\n  driver = passwd-file\n  args = username_format=%u {passwd}\n}}",
        conf,
        count=1,
        flags=re.MULTILINE | re.DOTALL,
    )
    conf = re.sub(
        r"^userdb \{.*?^\}",
        f"userdb {{\n  driver = passwd-file\n  args = username_format=%u {users}\n}}",
        conf,
        count=1,
        flags=re.MULTILINE | re.DOTALL,
    )
    conf, quotas = re.subn(r"^(\s*quota = ).*$", r"\1count:User quota", conf, flags=re.MULTILINE)
    if "driver = passwd-file" not in conf or quotas != 1:
        raise RuntimeError("dovecot.conf has no passdb block or quota line to replace: the template changed")
    return conf


@contextmanager
def floor_stack(
    settings: Settings, boxes: list[Box], domain_names: list[str], *, submission: bool = False
) -> Iterator[MailStack]:
    """The floor: the same Postfix and Dovecot configuration, but static maps and passwd-files made from
    `boxes`; no Postwerk service runs. The (empty) SQLite database exists only for the set-up checks.
    `submission`: the submission services too (`_floor_submission_postfix`, `_floor_submission_master`),
    and wait for their listeners."""
    mail = MailStack(settings)
    layout = mail.layout
    with sqlite_database(settings):
        mail.prepare()
    maps = layout.postfix_config
    (maps / "domains").write_text("".join(f"{name} ok\n" for name in domain_names))
    (maps / "routes").write_text(
        "".join(f"{box.address.lower()} {box.mailbox_id}@{MAILBOX_DOMAIN}\n" for box in boxes)
    )
    names = ["domains", "routes"]
    if submission:
        (maps / "senders").write_text("".join(f"{box.address.lower()} {box.mailbox_id}\n" for box in boxes))
        names.append("senders")
    for name in names:
        # -c: there may be no system-wide main.cf at all.
        _run(["/usr/sbin/postmap", "-c", str(layout.postfix_config), f"hash:{maps / name}"])
    main_cf = layout.postfix_config / "main.cf"
    main_cf.write_text(_floor_postfix(main_cf.read_text(), maps))
    if submission:
        main_cf.write_text(_floor_submission_postfix(main_cf.read_text(), maps))
        master_cf = layout.postfix_config / "master.cf"
        master_cf.write_text(_floor_submission_master(master_cf.read_text()))
    passwd = layout.dovecot_config / "floor-passwd"
    users = layout.dovecot_config / "floor-users"
    passwd.write_text(
        "".join(f"{b.address.lower()}:{b.password_hash}::::::user={b.mailbox_id}\n" for b in boxes)
    )
    users.write_text("".join(f"{box.mailbox_id}:::::::\n" for box in boxes))
    dovecot_gid = grp.getgrnam("dovecot").gr_gid
    for path in (passwd, users):
        os.chown(path, 0, dovecot_gid)
        path.chmod(0o640)
    layout.dovecot_conf.write_text(_floor_dovecot(layout.dovecot_conf.read_text(), passwd, users))
    mail.supervisor = Supervisor(
        [
            ChildSpec(
                "postfix",
                [str(POSTFIX), "-c", str(layout.postfix_config), "start-fg"],
                stop=mail._stop_postfix,
                before_start=mail._stop_stale_postfix,
            ),
            ChildSpec(
                "dovecot",
                [str(DOVECOT), "-F", "-c", str(layout.dovecot_conf)],
                before_start=mail._stop_stale_dovecot,
            ),
        ]
    )
    try:
        mail.supervisor.start()
        listeners = [settings.smtp, settings.imap]
        listeners += [settings.submission, settings.submissions] if submission else []
        for listener in listeners:
            wait_for_port(listener, time.monotonic() + READY_TIMEOUT)
        yield mail
    finally:
        mail.stop()
