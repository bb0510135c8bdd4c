"""What only the provider does (the `postwerk` command, never the API): switch an address's receiving off
and on, suspend and resume sending (a mailbox, a delivery box, a whole project), and make the provider's own
postmaster mailbox at first start."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from postwerk.domain.addresses import parse_address
from postwerk.domain.errors import Conflict, NotFound
from postwerk.service import Context, now, projects
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import ADMIN
from postwerk.store import repository as repo

log = logging.getLogger("postwerk")

POSTMASTER_PROJECT = "Postwerk provider (postmaster)"
POSTMASTER_PASSWORD_FILE = "postmaster-password"
_PASSWORD_BYTES = 24


def _address_id(connection: Connection, reference: str) -> str:
    """An address's id from its id or the address itself (any spelling that has its lookup key)."""
    if repo.get_address(connection, reference) is not None:
        return reference
    try:
        key = parse_address(reference).lookup_key
    except Exception:  # not an address either: the error below names what was given
        key = None
    found = None if key is None else repo.address_id_by_key(connection, key)
    if found is not None:
        return found
    raise NotFound(f"no mail address {reference!r}")


@dataclass(frozen=True)
class Receiving:
    address_id: str
    address: str
    receiving_disabled: bool


def set_receiving(ctx: Context, reference: str, *, enabled: bool) -> Receiving:
    """Switch receiving on or off. Postfix refuses mail for a disabled address at RCPT (550 5.2.1) from the
    next transaction on: its lookups read the row this writes."""
    with ctx.db.write() as connection:
        address_id = _address_id(connection, reference)
        # Through the repository: it also refreshes the address's stored API document in this transaction.
        repo.update_address(connection, address_id, {"receiving_disabled": not enabled, "updated_at": now()})
        record = repo.get_address(connection, address_id)
        assert record is not None
        return Receiving(address_id, str(record.row.address), bool(record.row.receiving_disabled))


@dataclass(frozen=True)
class Sending:
    """An account's or a project's sending after the provider's switch."""

    kind: str  # "mailbox", "deliveryBox" or "project"
    id: str
    name: str  # the address, the delivery box's login name, or the project's short id
    sending_enabled: bool


def set_mailbox_sending(ctx: Context, reference: str, *, enabled: bool) -> Sending:
    """A mailbox's `sendingEnabled` (the API shows it): submission refuses its mail with 550 5.7.1 from the
    next transaction on. Receiving is not affected."""
    with ctx.db.write() as connection:
        address_id = _address_id(connection, reference)
        record = repo.get_address(connection, address_id)
        assert record is not None
        if not record.row.is_mailbox:
            raise Conflict(f"{record.row.address} is a forwarding address without a mailbox: it cannot send")
        # Through the repository: it also refreshes the address's stored API document in this transaction.
        repo.update_address(connection, address_id, {"sending_enabled": enabled, "updated_at": now()})
        return Sending("mailbox", address_id, str(record.row.address), enabled)


def set_delivery_box_sending(ctx: Context, reference: str, *, enabled: bool) -> Sending:
    """A delivery box's `sendingEnabled` (by its id or its login name; the API shows it)."""
    with ctx.db.write() as connection:
        box = repo.get_delivery_box(connection, reference)
        if box is None:
            box = repo.find_delivery_box_by_name(connection, reference.strip().lower())
        if box is None:
            raise NotFound(f"no delivery box {reference!r}")
        repo.update_delivery_box(connection, str(box.id), {"sending_enabled": enabled, "updated_at": now()})
        return Sending("deliveryBox", str(box.id), str(box.name), enabled)


def set_project_sending(ctx: Context, reference: str, *, enabled: bool) -> Sending:
    """Suspend (or resume) the sending of every mailbox and delivery box of a project, those created later
    too: the project's own flag, which the submission side reads with every account
    (`Account.project_sending_suspended`). The accounts' own `sendingEnabled` stay as they were, so resuming
    restores exactly what the customer had."""
    with ctx.db.write() as connection:
        project = repo.find_project(connection, reference)
        if project is None:
            raise NotFound(f"no project {reference!r}")
        repo.set_project_sending_suspended(connection, str(project.id), not enabled, updated_at=now())
        return Sending("project", str(project.id), str(project.short_id), enabled)


def postmaster_password_file(data_dir: Path) -> Path:
    return data_dir / POSTMASTER_PASSWORD_FILE


def ensure_postmaster_mailbox(ctx: Context, mail_hostname: str, data_dir: Path) -> Path | None:
    """Without --postmaster, postmaster@ mail goes to the mailbox postmaster@<mail host name>: made here on
    the first start (in a project of the provider's own that holds the host name's domain), its password in
    an owner-only file of the data folder, never printed or logged. Returns that file when it was made."""
    address = f"postmaster@{mail_hostname}"
    key = parse_address(address).lookup_key
    with ctx.db.read() as connection:
        if repo.address_key_taken(connection, key):
            return None
        domain = repo.find_domain(connection, parse_address(address).domain.ascii)
        owner = repo.find_project(connection, str(domain.project_id)) if domain is not None else None
    if domain is not None:
        # Never a mailbox in a customer's project: the customer could read or delete it.
        if owner is None or owner.description != POSTMASTER_PROJECT:
            raise Conflict(
                f"the mail host name {mail_hostname} is a customer's domain: give --postmaster ADDRESS"
            )
        project_id = str(domain.project_id)
    else:
        project_id, _ = projects.create_project(ctx, POSTMASTER_PROJECT)
        projects.add_domain(ctx, mail_hostname, project_id)
    password = secrets.token_urlsafe(_PASSWORD_BYTES)
    addresses.create(
        ctx,
        ADMIN,
        project_id,
        addresses.NewAddress(
            address=address,
            mailbox=addresses.NewMailbox(password=password, quota_in_bytes=-1, enable_spam_protection=False),
        ),
    )
    path = postmaster_password_file(data_dir)
    # Imported here: bootstrap imports the service package.
    from postwerk.bootstrap import write_owner_only

    write_owner_only(path, password + "\n")
    log.info("made the postmaster mailbox %s; its password is in %s", address, path)
    return path
