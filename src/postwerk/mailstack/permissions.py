"""Ownership and modes of the data folder, and the check, as each mail server user, that it reaches what
it needs.

SQLite in WAL mode: a reader writes the shared-memory index (`-shm`) and may have to create `-wal` and
`-shm` when no one has the database open. So the database group gets read and write on the database files
and on the data folder, which is setgid (new files keep the group) and sticky (no one removes a file it
does not own). SQLite gives `-wal`/`-shm` the mode and, when root makes them, the owner of the database.
Others may only pass through the data folder (the LDA's user, which is not in the group, must reach the
Maildirs); nothing in it is readable by them but the servers' configuration, which holds no secret.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from postwerk.mailstack.layout import Accounts, Layout

PROBE_TIMEOUT = 20.0
DATA_DIR_MODE = 0o3771
DB_FILE_MODE = 0o660
FIX_ACCOUNTS = "run `make mail-deps` as root (installs the mail servers, creates the users and groups)"

# What one user must reach: the database (a lookup, read-write as SQLite's WAL readers open it), files to
# read, folders to write in.
_PROBE = """
import json, os, sqlite3, sys
task = json.loads(sys.argv[1])
if task["database"]:
    connection = sqlite3.connect(task["database"], timeout=5)
    connection.execute("SELECT count(*) FROM mail_domains").fetchone()
    connection.close()
for path in task["read"]:
    open(path, "rb").close()
for path in task["write"]:
    if not os.access(path, os.W_OK | os.X_OK):
        sys.exit("cannot write in " + path)
"""


class MailSetupError(RuntimeError):
    """The mail servers cannot run as configured; the message names the fix."""


@dataclass(frozen=True)
class Identity:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


@dataclass(frozen=True)
class Needs:
    identity: Identity
    database: Path | None
    read: tuple[Path, ...] = ()
    write: tuple[Path, ...] = ()


def _group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise MailSetupError(f"the group {name!r} does not exist: {FIX_ACCOUNTS}") from None


def user(name: str, extra_groups: tuple[str, ...] = ()) -> Identity:
    """A user with the groups its server gives it (not those of /etc/group)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise MailSetupError(f"the user {name!r} does not exist: {FIX_ACCOUNTS}") from None
    groups = (entry.pw_gid, *(_group_id(group) for group in extra_groups))
    return Identity(name, entry.pw_uid, entry.pw_gid, groups)


def needs(layout: Layout, accounts: Accounts, sqlite_path: Path | None) -> list[Needs]:
    """Postfix keeps only its primary group; Dovecot's auth service gets the database group through
    `extra_groups`; the LDA, started by Postfix's pipe(8) as the mail user, reads Dovecot's configuration
    and writes Maildirs."""
    return [
        Needs(user(accounts.postfix_owner), sqlite_path),
        Needs(user("dovecot", (accounts.db_group,)), sqlite_path),
        Needs(user(accounts.mail_user), None, read=(layout.dovecot_conf,), write=(layout.boxes,)),
    ]


def _chown(path: Path, owner: str | None, group: str | None) -> None:
    os.chown(
        path,
        pwd.getpwnam(owner).pw_uid if owner else -1,
        grp.getgrnam(group).gr_gid if group else -1,
    )


def _folder(path: Path, mode: int, owner: str = "root", group: str = "root") -> None:
    path.mkdir(parents=True, exist_ok=True)
    _chown(path, owner, group)
    path.chmod(mode)


def prepare(layout: Layout, accounts: Accounts, data_dir: Path, sqlite_path: Path | None) -> None:
    """Create the embedded layout's folders with the owners and modes the servers expect (as root)."""
    assert layout.logs is not None, "only the embedded layout lives in the data folder"
    _folder(data_dir, DATA_DIR_MODE, group=accounts.db_group)
    if sqlite_path is not None:
        for suffix in ("", "-wal", "-shm"):
            path = sqlite_path.with_name(sqlite_path.name + suffix)
            if path.exists():
                _chown(path, None, accounts.db_group)
                path.chmod(DB_FILE_MODE)
    for folder in (layout.postfix_config.parent, layout.postfix_config, layout.postfix_queue):
        _folder(folder, 0o755)
    _folder(layout.dovecot_config, 0o755)
    _folder(layout.dovecot_base, 0o755)
    _folder(layout.dovecot_state, 0o750)
    # Mail logs name senders and recipients: root's only.
    _folder(layout.logs, 0o700)
    # Postfix's own data (TLS session caches, the master lock) belongs to its mail_owner.
    _folder(layout.postfix_data, 0o700, owner=accounts.postfix_owner, group=accounts.db_group)
    _folder(layout.boxes, 0o700, owner=accounts.mail_user, group=accounts.mail_group)
    # Postwerk's own sockets: others pass through; each socket is opened to the one group that uses it.
    _folder(layout.services, 0o711)
    if layout.tls_cert.parent == layout.postfix_config.parent / "tls":
        _folder(layout.tls_cert.parent, 0o700)


def _probe_python() -> str:
    # The system interpreter: a virtualenv under a private home may be closed to these users.
    base = getattr(sys, "_base_executable", None) or sys.executable
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else base


def check_access(layout: Layout, accounts: Accounts, sqlite_path: Path | None) -> None:
    """Probe, as each mail server user, what it needs; refuse with the fix when one fails."""
    failures = []
    for need in needs(layout, accounts, sqlite_path):
        task = {
            "database": str(need.database) if need.database else None,
            "read": [str(path) for path in need.read],
            "write": [str(path) for path in need.write],
        }
        result = subprocess.run(
            [_probe_python(), "-I", "-S", "-c", _PROBE, json.dumps(task)],
            user=need.identity.uid,
            group=need.identity.gid,
            extra_groups=list(need.identity.groups),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
        )
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            failures.append(f"{need.identity.name}: {reason}")
    if failures:
        raise MailSetupError(
            "the mail servers' users cannot reach the data folder or the database ("
            + "; ".join(failures)
            + f"). Fix: {FIX_ACCOUNTS}, and make every folder above the data folder enterable by them"
            " (chmod o+x on each parent), or use the default data folder /var/lib/postwerk"
        )
