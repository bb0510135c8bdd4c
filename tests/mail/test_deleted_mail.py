"""The mail of a deleted mailbox: removed from disk after the grace period, counted from the deletion (also
when the mailbox was deleted while the mail node was down), never left orphaned, never handed to a new
address with the same name; and nothing but a mailbox's own folder is ever removed."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.mailstack.sweep import RECORDS_KEPT, DatabaseMailboxes, Sweeper, existing_mailboxes
from postwerk.service import Context, projects
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import ADMIN
from postwerk.store import repository as repo
from postwerk.store.repository import Database
from tests.mail.conftest import DELETION_GRACE, Hosted, Stack, fetch_all, imap_login, wait_for_messages
from tests.mail.messages import text_message

PASSWORD = "kept for a while, then gone"
REMOVAL_TIMEOUT = DELETION_GRACE + 20.0


def _folder(root: Path, name: str | None = None) -> Path:
    folder = root / (name or str(uuid.uuid4()))
    (folder / "Maildir" / "cur").mkdir(parents=True)
    (folder / "Maildir" / "cur" / "1.mail").write_text("mail")
    return folder


class Existing:
    def __init__(self, ids: set[str]) -> None:
        self.ids = ids
        self.failing = False

    def __call__(self, candidates: Sequence[str]) -> set[str]:
        if self.failing:
            raise ConnectionError("database away")
        return self.ids & set(candidates)


def test_orphaned_folders_are_removed_after_the_grace_period_and_nothing_else(tmp_path: Path) -> None:
    boxes = tmp_path / "boxes"
    boxes.mkdir()
    alive, orphan, restored = _folder(boxes), _folder(boxes), _folder(boxes)
    outside = _folder(tmp_path, "outside")  # what a link points to: never touched
    link = boxes / str(uuid.uuid4())
    link.symlink_to(outside, target_is_directory=True)
    not_an_id = _folder(boxes, "not-a-mailbox")
    upper = _folder(boxes, str(uuid.uuid4()).upper())  # not the shape Postwerk writes
    a_file = boxes / str(uuid.uuid4())
    a_file.write_text("a file, not a folder")
    existing = Existing({alive.name})
    sweeper = Sweeper(boxes, tmp_path / "state.json", 100, existing)

    first = sweeper.sweep(now=1000)
    assert first.removed == [] and set(first.waiting) == {orphan.name, restored.name}
    existing.ids.add(restored.name)  # the provider restored it within the grace period
    existing.failing = True
    with pytest.raises(ConnectionError):
        sweeper.sweep(now=2000)  # nothing is removed on a guess
    assert orphan.exists()
    existing.failing = False
    assert sweeper.sweep(now=1099).removed == []
    second = sweeper.sweep(now=1100)
    assert second.removed == [orphan.name] and second.waiting == []
    assert not orphan.exists()
    for kept in (alive, restored, not_an_id, upper, a_file, link, outside / "Maildir" / "cur" / "1.mail"):
        assert kept.exists(), kept
    # Orphaned again later: its count starts afresh.
    existing.ids.discard(restored.name)
    assert sweeper.sweep(now=5000).waiting == [restored.name]
    assert sweeper.sweep(now=5099).removed == []


class Deletions:
    def __init__(self, times: Mapping[str, float]) -> None:
        self.times = times
        self.asked: list[list[str]] = []

    def __call__(self, ids: Sequence[str]) -> dict[str, float]:
        self.asked.append(list(ids))
        return {key: self.times[key] for key in ids if key in self.times}


def test_the_grace_period_counts_from_the_deletion_not_from_when_the_sweep_finds_the_folder(
    tmp_path: Path,
) -> None:
    boxes = tmp_path / "boxes"
    boxes.mkdir()
    alive, long_ago, recent, unrecorded = (_folder(boxes) for _ in range(4))
    deletions = Deletions({long_ago.name: 500.0, recent.name: 990.0})
    forgotten: list[float] = []
    existing = Existing({alive.name})
    sweeper = Sweeper(boxes, tmp_path / "state.json", 100, existing, deletions, forgotten.append)

    # The node finds them all at once (it was down, say): deleted 500 s ago is past its grace already.
    first = sweeper.sweep(now=1000)
    assert first.removed == [long_ago.name]
    assert set(first.waiting) == {recent.name, unrecorded.name}
    assert deletions.asked == [sorted([long_ago.name, recent.name, unrecorded.name])]  # orphans only
    assert sweeper.sweep(now=1089).removed == []
    assert sweeper.sweep(now=1090).removed == [recent.name]  # 100 s after its deletion
    # Without a record (deleted before Postwerk kept them): from when the sweep first found it.
    assert sweeper.sweep(now=1099).removed == []
    assert sweeper.sweep(now=1100).removed == [unrecorded.name]
    assert alive.exists() and not any(f.exists() for f in (long_ago, recent, unrecorded))
    # Old records are dropped, long after their grace period, once in a while (not on every sweep).
    assert forgotten == [1000 - 100 - RECORDS_KEPT]


def test_every_way_a_mailbox_goes_records_its_deletion_and_the_sweep_counts_from_it(
    engine: Engine, tmp_path: Path
) -> None:
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))

    def project() -> tuple[str, str, str]:
        project_id, short_id = projects.create_project(context, "deletions")
        suffix = short_id.removeprefix("p-")
        first, second = f"d{suffix}.example", f"e{suffix}.example"
        projects.add_domain(context, first, project_id)
        projects.add_domain(context, second, project_id)
        return project_id, first, second

    def create(project_id: str, address: str, mailbox: bool = True) -> str:
        box = addresses.NewMailbox(password=PASSWORD, quota_in_bytes=-1) if mailbox else None
        forwards = () if mailbox else ("x@elsewhere.example",)
        request = addresses.NewAddress(address=address, forward_addresses=forwards, mailbox=box)
        return addresses.create(context, ADMIN, project_id, request)

    project_id, domain, other_domain = project()
    kept = create(project_id, f"kept@{domain}")
    by_address = create(project_id, f"gone@{domain}")
    forwarder = create(project_id, f"fwd@{domain}", mailbox=False)
    by_domain = create(project_id, f"x@{other_domain}")
    other_project, third_domain, _ = project()
    by_project = create(other_project, f"y@{third_domain}")
    started = time.time()
    addresses.delete(context, ADMIN, by_address)
    addresses.delete(context, ADMIN, forwarder)
    projects.remove_domain(context, other_domain, with_addresses=True)
    projects.delete_project(context, other_project)
    ended = time.time()

    mailboxes = DatabaseMailboxes(context.db)
    deleted = mailboxes.deleted_at([kept, by_address, forwarder, by_domain, by_project])
    assert set(deleted) == {by_address, by_domain, by_project}  # mailboxes only, gone only
    assert all(started - 1 <= when <= ended + 1 for when in deleted.values()), (started, deleted)

    # The sweep's first look, a grace period after the deletions: their mail goes at once.
    boxes = tmp_path / "boxes"
    folders = {name: _folder(boxes, name) for name in (kept, by_address, by_domain, by_project)}
    sweeper = Sweeper(
        boxes, tmp_path / "state.json", 100, mailboxes.existing, mailboxes.deleted_at, mailboxes.forget
    )
    assert sweeper.sweep(now=min(deleted.values()) + 99).removed == []
    result = sweeper.sweep(now=max(deleted.values()) + 100)
    assert sorted(result.removed) == sorted([by_address, by_domain, by_project]) and result.waiting == []
    assert folders[kept].exists()
    assert set(mailboxes.deleted_at(list(deleted))) == set(deleted)  # records kept for a while
    later = Sweeper(boxes, tmp_path / "state.json", 100, mailboxes.existing, forget=mailboxes.forget)
    later.sweep(now=max(deleted.values()) + 100 + RECORDS_KEPT + 1)
    assert mailboxes.deleted_at(list(deleted)) == {}


def test_the_sweep_asks_the_mail_servers_view(engine: Engine) -> None:
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))
    project_id, short_id = projects.create_project(context, "sweep")
    domain = f"s{short_id.removeprefix('p-')}.example"
    projects.add_domain(context, domain, project_id)

    def create(address: str, mailbox: bool) -> str:
        box = addresses.NewMailbox(password=PASSWORD, quota_in_bytes=-1) if mailbox else None
        forwards = () if mailbox else ("x@elsewhere.example",)
        return addresses.create(
            context,
            ADMIN,
            project_id,
            addresses.NewAddress(address=address, forward_addresses=forwards, mailbox=box),
        )

    kept = create(f"kept@{domain}", True)
    deleted = create(f"deleted@{domain}", True)
    forwarder = create(f"forwarder@{domain}", False)
    addresses.delete(context, ADMIN, deleted)
    with context.db.read() as connection:
        found = existing_mailboxes(connection, [kept, deleted, forwarder, str(uuid.uuid4())])
    assert found == {kept}


def _wait_gone(stack: Stack, folder: Path) -> None:
    deadline = time.monotonic() + REMOVAL_TIMEOUT
    while folder.exists():
        assert time.monotonic() < deadline, f"{folder} still there\n{stack.log_tail()}"
        time.sleep(0.2)


def test_a_deleted_mailboxs_mail_is_removed_and_never_handed_to_a_new_address(
    stack: Stack, hosted: Hosted
) -> None:
    address = f"leaver@{hosted.domain}"
    old_id = hosted.create_mailbox(address, PASSWORD)
    old_mail = text_message("a@outside.example", address, "old", "For the first owner only.")
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [address], old_mail) == {}
    wait_for_messages(stack, address, PASSWORD, 1)
    old_folder = stack.mail.layout.boxes / old_id
    assert old_folder.is_dir()

    deleted_at = time.monotonic()
    deleted_wall = time.time()
    assert hosted.api.delete(f"/v2/mail-addresses/{old_id}").status_code == 204
    with stack.context.db.read() as connection:
        (recorded,) = repo.mailbox_deletions(connection, [old_id]).values()
    assert abs(recorded.timestamp() - deleted_wall) < 5
    new_id = hosted.create_mailbox(address, PASSWORD)
    assert new_id != old_id
    new_mail = text_message("a@outside.example", address, "new", "For the new owner.")
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [address], new_mail) == {}
    (stored,) = wait_for_messages(stack, address, PASSWORD, 1)
    assert stored.endswith(new_mail)

    # Kept for the grace period (the sweep runs every second in the test stack), then removed.
    time.sleep(max(0.0, DELETION_GRACE - 1 - (time.monotonic() - deleted_at)))
    assert old_folder.is_dir()
    _wait_gone(stack, old_folder)
    assert (stack.mail.layout.boxes / new_id).is_dir()
    client = imap_login(stack, address, PASSWORD)
    try:
        assert [message.endswith(new_mail) for message in fetch_all(client)] == [True]
    finally:
        client.logout()


def test_folders_orphaned_while_the_mail_node_was_down_are_swept_too(stack: Stack) -> None:
    boxes = stack.mail.layout.boxes
    orphan = _folder(boxes)  # a mailbox deleted while nothing watched: only its folder is left
    strangers = [_folder(boxes, "provider-notes"), boxes / f"{uuid.uuid4()}.tar"]
    strangers[1].write_text("a backup someone put here")
    outside = _folder(stack.mail.layout.boxes.parent, f"outside-{uuid.uuid4()}")
    link = boxes / str(uuid.uuid4())
    link.symlink_to(outside, target_is_directory=True)
    try:
        _wait_gone(stack, orphan)
        time.sleep(2)  # more sweeps: the rest stays
        for kept in (*strangers, link, outside / "Maildir" / "cur" / "1.mail"):
            assert kept.exists() or kept.is_symlink(), kept
    finally:
        link.unlink()
        for path in (outside, strangers[0]):
            shutil.rmtree(path)
        strangers[1].unlink()
