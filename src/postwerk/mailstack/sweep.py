"""Removes the mail of deleted mailboxes from disk, after a grace period.

A mailbox's storage is the folder `<boxes>/<mailbox id>` (Dovecot's `mail_home`); an id is never used
twice, so a new address with the same name gets a new, empty folder and never sees the old mail. Deleting an
address touches only the database (the API node may not even see the mail storage), so this sweep compares
the folders with the database instead: a folder whose id is no mailbox any more is removed once the grace
period (`mail_deletion_grace`) has passed since the mailbox was deleted. Every deletion records its time in
the same transaction (table `deleted_mailboxes`, whichever way the mailbox went: the address, its domain, its
project), so a mailbox deleted while the mail node was down or its sweep failing is not kept a grace period
longer. A folder without such a record (a mailbox deleted before Postwerk kept them, or a record pruned
long after its grace period) counts from when the sweep first finds it orphaned (noted in the state file).
A folder whose mailbox is back (the provider restored the database within the grace period) is kept and
forgotten again.

Careful by construction: only folders whose names have the exact shape of a mailbox id, directly inside the
storage folder, opened without following symbolic links, are ever removed; when the database cannot be read,
nothing is.

`python -m postwerk.mailstack.sweep --boxes DIR --state FILE --grace SECONDS --interval SECONDS` (the
database from Postwerk's settings: POSTWERK_DATABASE_URL or POSTWERK_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, bindparam, text

from postwerk.service_main import database_from_settings
from postwerk.store import repository as repo
from postwerk.store.repository import Database

log = logging.getLogger("postwerk.mailstack.sweep")

# str(uuid.uuid4()): what Postwerk names a mailbox (and so its folder) by.
MAILBOX_FOLDER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
QUERY_CHUNK = 500

# Records of deletions outlive the grace period by this long, then the sweep drops them (a mail node that
# comes back even later counts such a folder's grace from when it finds it: later, never earlier).
RECORDS_KEPT = 30 * 24 * 3600.0
FORGET_INTERVAL = 3600.0

# ids among the given ones that are mailboxes now
ExistingMailboxes = Callable[[Sequence[str]], set[str]]
# when the given (no longer existing) mailboxes were deleted, as POSIX times, for those with a record
DeletionTimes = Callable[[Sequence[str]], Mapping[str, float]]
# drop the records of deletions before this POSIX time
ForgetDeletions = Callable[[float], object]

_EXISTING = text("SELECT mailbox_id FROM mail_mailboxes WHERE mailbox_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


def existing_mailboxes(connection: Connection, ids: Sequence[str]) -> set[str]:
    """Through the lookup view the mail servers read too: a folder is orphaned exactly when Dovecot would
    no longer find its mailbox."""
    found: set[str] = set()
    for start in range(0, len(ids), QUERY_CHUNK):
        chunk = list(ids[start : start + QUERY_CHUNK])
        found.update(str(row[0]) for row in connection.execute(_EXISTING, {"ids": chunk}))
    return found


class DatabaseMailboxes:
    """What the sweep asks the database: which mailboxes exist, when the others were deleted."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        with self.database.read() as connection:
            return existing_mailboxes(connection, ids)

    def deleted_at(self, ids: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        with self.database.read() as connection:
            for start in range(0, len(ids), QUERY_CHUNK):
                chunk = ids[start : start + QUERY_CHUNK]
                deletions = repo.mailbox_deletions(connection, chunk)
                found.update((key, when.timestamp()) for key, when in deletions.items())
        return found

    def forget(self, before: float) -> None:
        with self.database.write() as connection:
            repo.forget_mailbox_deletions(connection, datetime.fromtimestamp(before, UTC))


@dataclass(frozen=True)
class SweepResult:
    removed: list[str]
    waiting: list[str]  # orphaned, within their grace period


class Sweeper:
    def __init__(
        self,
        boxes: Path,
        state_file: Path,
        grace: float,
        existing: ExistingMailboxes,
        deleted_at: DeletionTimes | None = None,
        forget: ForgetDeletions | None = None,
    ) -> None:
        self.boxes = boxes
        self.state_file = state_file
        self.grace = grace
        self.existing = existing
        self.deleted_at = deleted_at
        self.forget = forget
        self._forgotten_at: float | None = None

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            # Starting the count afresh only delays a removal: never a reason to remove early.
            log.warning("cannot read %s (%s): orphaned folders are counted from now", self.state_file, error)
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            str(key): float(value)
            for key, value in data.items()
            if MAILBOX_FOLDER.fullmatch(str(key)) and isinstance(value, int | float)
        }

    def _save(self, state: dict[str, float]) -> None:
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(state, handle, sort_keys=True)
        temporary.replace(self.state_file)

    @staticmethod
    def _folders(root: int) -> list[str]:
        names = []
        with os.scandir(root) as entries:
            for entry in entries:
                if MAILBOX_FOLDER.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                    names.append(entry.name)
        return names

    def sweep(self, now: float | None = None) -> SweepResult:
        now = time.time() if now is None else now
        try:
            root = os.open(self.boxes, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return SweepResult([], [])  # no mail stored yet
        try:
            folders = self._folders(root)
            # Any error here (the database unreachable) propagates: nothing is removed on a guess.
            orphaned = set(folders) - self.existing(folders)
            deleted = self.deleted_at(sorted(orphaned)) if orphaned and self.deleted_at else {}
            state = self._load()
            seen = {name: state.get(name, now) for name in sorted(orphaned)}
            removed = []
            for name, noticed in seen.items():
                # From the deletion; from when first noticed only for a folder without a record.
                if now - deleted.get(name, noticed) < self.grace:
                    continue
                if self._remove(root, name):
                    removed.append(name)
            for name in removed:
                del seen[name]
            if seen != state:
                self._save(seen)
            self._forget_old_records(now)
            return SweepResult(removed, sorted(seen))
        finally:
            os.close(root)

    def _forget_old_records(self, now: float) -> None:
        if self.forget is None:
            return
        if self._forgotten_at is not None and now - self._forgotten_at < FORGET_INTERVAL:
            return
        self._forgotten_at = now
        try:
            self.forget(now - self.grace - RECORDS_KEPT)
        except Exception as error:  # tidying only: the next interval tries again
            log.warning("could not drop old records of deleted mailboxes (%s)", type(error).__name__)

    @staticmethod
    def _remove(root: int, name: str) -> bool:
        # Checked again right before: still a real folder (not replaced by a link in the meantime).
        try:
            if not stat.S_ISDIR(os.stat(name, dir_fd=root, follow_symlinks=False).st_mode):
                return False
            # With dir_fd, rmtree works on descriptors and never follows a symbolic link inside.
            shutil.rmtree(name, dir_fd=root)
        except FileNotFoundError:
            return True
        except OSError as error:
            log.error("could not remove the mail of deleted mailbox %s: %s", name, error)
            return False
        log.info("removed the mail of deleted mailbox %s", name)
        return True


def run_periodically(sweeper: Sweeper, interval: float, stop: threading.Event) -> None:
    while True:
        try:
            sweeper.sweep()
        except Exception as error:  # the next round tries again; the mail stays meanwhile
            log.error("sweep failed (%s: %s); nothing removed", type(error).__name__, error)
        if stop.wait(interval):
            return


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m postwerk.mailstack.sweep")
    parser.add_argument("--boxes", required=True, type=Path, help="the mail storage folder (mail_home's)")
    parser.add_argument(
        "--state", required=True, type=Path, help="file noting when orphans without a record were first seen"
    )
    parser.add_argument("--grace", required=True, type=float, help="seconds an orphaned folder is kept")
    parser.add_argument("--interval", required=True, type=float, help="seconds between sweeps")
    args = parser.parse_args(argv)
    mailboxes = DatabaseMailboxes(database_from_settings(pool_size=1))
    sweeper = Sweeper(
        args.boxes.resolve(),
        args.state,
        args.grace,
        mailboxes.existing,
        mailboxes.deleted_at,
        mailboxes.forget,
    )
    stop = threading.Event()
    _stop_on_signals(stop)
    log.info("sweeping %s every %.0f s (grace %.0f s)", args.boxes, args.interval, args.grace)
    run_periodically(sweeper, args.interval, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
