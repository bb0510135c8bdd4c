"""Mail addresses: mailboxes and forwarding addresses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from postwerk.domain.addresses import MailAddress, parse_address, search_pattern, search_text
from postwerk.domain.errors import Conflict, NotFound, ValidationFailed
from postwerk.domain.forwarding import parse_forward_targets
from postwerk.domain.hosting import check_domain_assigned
from postwerk.domain.mailboxes import (
    AutoResponder,
    SpamProtection,
    check_autoresponder,
    check_spam_protection,
    default_spam_protection,
)
from postwerk.domain.names import new_mailbox_name
from postwerk.domain.passwords import check_password_rules, hash_password
from postwerk.domain.quotas import check_quota
from postwerk.domain.tokens import TokenScope
from postwerk.service import Context, new_id, now
from postwerk.service.access import Caller, verified
from postwerk.service.projects import scope_and_visible_project_id
from postwerk.store import repository as repo
from postwerk.store.repository import AddressFilter, AddressRecord, Page, Sorting


@dataclass(frozen=True)
class NewMailbox:
    password: str = field(repr=False)  # never in a log line or a traceback
    quota_in_bytes: int
    enable_spam_protection: bool = True


@dataclass(frozen=True)
class NewAddress:
    address: str
    forward_addresses: Sequence[str] = ()
    is_catch_all: bool = False
    mailbox: NewMailbox | None = None


_NO_MAILBOX = "this is a forwarding address, which has no mailbox"


def _target_rows(targets: Sequence[MailAddress]) -> list[dict[str, str]]:
    return [{"target": t.written, "target_key": t.lookup_key, "target_route": t.ascii_route} for t in targets]


def _address_columns(address: MailAddress, domain_id: str, mailbox_name: str | None) -> dict[str, Any]:
    return {
        "address": address.written,
        "search_text": search_text(address, mailbox_name),
        "local_part": address.local_part,
        "domain_ascii": address.domain.ascii,
        "domain_unicode": address.domain.unicode,
        "lookup_key": address.lookup_key,
        "domain_id": domain_id,
    }


def _claim_address(
    connection: Connection,
    address: MailAddress,
    project_id: str,
    *,
    catch_all: bool,
    own_id: str | None = None,
) -> str:
    """Check that `address` may be held by the project; return its domain's id."""
    facts = repo.claim_facts(connection, address.domain.ascii, address.lookup_key)
    check_domain_assigned(address.domain, facts.project_id if facts else None, project_id)
    assert facts is not None
    if facts.key_holder is not None:
        raise Conflict(f"the address {address.written} is already in use")
    if catch_all and facts.catch_all_holder not in (None, own_id):
        raise Conflict(f"the domain {address.domain.unicode} already has a catch-all address")
    return str(facts.id)


def _unique_conflict(error: IntegrityError, what: str) -> Conflict:
    if repo.is_unique_violation(error):
        return Conflict(what)
    # A foreign key gone under us: the project or domain was removed by a concurrent change.
    return Conflict("the project or domain changed while the request ran; try again")


def create(ctx: Context, caller: Caller, project_reference: str, request: NewAddress) -> str:
    with ctx.db.read() as connection:  # who asks, and may they, before any password is hashed
        scope, project_id = scope_and_visible_project_id(connection, caller, project_reference)
        scope.require_write()
    address = parse_address(request.address)
    targets = parse_forward_targets(request.forward_addresses, address, required=request.mailbox is None)
    mailbox_columns: dict[str, Any] = {}
    timestamp = now()
    if request.mailbox is not None:
        check_password_rules(
            request.mailbox.password,
            ".mailbox.password",
            address=address.written,
            local_part=address.local_part,
        )
        check_quota(request.mailbox.quota_in_bytes, ".mailbox.quotaInBytes")
        spam = default_spam_protection(request.mailbox.enable_spam_protection)
        mailbox_columns = {
            "mailbox_name": new_mailbox_name(),
            "password_hash": hash_password(request.mailbox.password),
            "password_updated_at": timestamp,
            "quota_bytes": request.mailbox.quota_in_bytes,
            "sending_enabled": True,
            **_spam_columns(spam),
            "rate_limit_id": ctx.rate_limits.default.id,
        }
    address_id = new_id()
    try:
        with ctx.db.write() as connection:
            # The project is not read again: if it goes meanwhile, the foreign key refuses the insert.
            domain_id = _claim_address(connection, address, project_id, catch_all=request.is_catch_all)
            repo.insert_address(
                connection,
                {
                    "id": address_id,
                    "project_id": project_id,
                    **_address_columns(address, domain_id, mailbox_columns.get("mailbox_name")),
                    "is_mailbox": request.mailbox is not None,
                    "is_catch_all": request.is_catch_all,
                    "usage_updated_at": timestamp,
                    "created_at": timestamp,
                    "updated_at": timestamp,
                    **mailbox_columns,
                },
                _target_rows(targets),
            )
    except IntegrityError as error:  # a concurrent request took the address or the catch-all first
        raise _unique_conflict(
            error, f"the address {address.written} or its domain's catch-all is taken"
        ) from None
    return address_id


def _visible(
    connection: Connection, scope: TokenScope, address_id: str, *, for_update: bool = False
) -> AddressRecord:
    """The address, if the token may see it. In a write, `for_update` locks its row (PostgreSQL), so that
    concurrent changes of one address (a rename and new forward targets, say) run one after the other."""
    record = repo.get_address(connection, address_id, for_update=for_update)
    if record is None or not scope.may_see(record.row.project_id):
        raise NotFound("the mail address does not exist")
    return record


def get(ctx: Context, caller: Caller, address_id: str) -> str:
    """The address as the API returns it, as JSON text (`store.address_document`)."""
    with ctx.db.read() as connection:
        if caller.known_scope is not None:
            scope = caller.known_scope
            found = repo.get_address_document(connection, address_id)
        else:
            token_and_address = repo.get_address_document_with_token(connection, address_id, caller.digest())
            scope = caller.scope_from(token_and_address[0] if token_and_address else None)
            found = token_and_address[1] if token_and_address else None
    if found is None or not scope.may_see(found.address_project_id):
        raise NotFound("the mail address does not exist")
    return str(found.document)


def list_for_project(
    ctx: Context,
    caller: Caller,
    project_reference: str | None,
    address_filter: AddressFilter,
    sorting: Sequence[Sorting],
    page: Page,
) -> tuple[list[str], int]:
    """A page of the matching addresses as JSON texts, and how many match in all."""
    with ctx.db.read() as connection:
        project_ids: Sequence[str] | None
        if project_reference is not None:
            _, project_id = scope_and_visible_project_id(connection, caller, project_reference)
            project_ids = [project_id]
        else:
            scope = caller.scope(connection)
            project_ids = None if scope.is_admin else [scope.project_id or ""]
        search_key = search_pattern(address_filter.search) if address_filter.search else None
        effective = replace(address_filter, project_ids=project_ids, search_key=search_key)
        return repo.list_address_documents(connection, effective, sorting, page)


def store_stale_documents(ctx: Context, batch: int = 500) -> int:
    """Store the API document of every address that has none, or one of an older shape (rows loaded in
    bulk, or written by an earlier release): until then each read computes it. One pass over the table,
    one short write per batch. Returns how many were stored."""
    return repo.store_stale_documents(ctx.db, batch)


def delete(ctx: Context, caller: Caller, address_id: str) -> None:
    with ctx.db.write() as connection:
        scope = caller.writer(connection)
        _visible(connection, scope, address_id, for_update=True)
        repo.delete_address(connection, address_id, deleted_at=now())


def _update(
    ctx: Context,
    caller: Caller,
    address_id: str,
    values: dict[str, Any],
    *,
    mailbox_only: str | None = None,
    check: Callable[[], object] | None = None,
) -> AddressRecord:
    """Change columns of one address. `check` validates the input once the caller is known to be allowed
    (an anonymous request is a 401, not a lesson in validation)."""
    with ctx.db.write() as connection:
        scope = caller.writer(connection)
        record = _visible(connection, scope, address_id, for_update=True)
        if check is not None:
            check()
        if mailbox_only is not None and not record.row.is_mailbox:
            raise ValidationFailed.at(mailbox_only, _NO_MAILBOX, "required", missingProperty="mailbox")
        repo.update_address(connection, address_id, {**values, "updated_at": now()})
        return record


def change_address(ctx: Context, caller: Caller, address_id: str, new_address: str) -> None:
    try:
        with ctx.db.write() as connection:
            scope = caller.writer(connection)
            record = _visible(connection, scope, address_id, for_update=True)
            address = parse_address(new_address)
            if address.lookup_key == record.row.lookup_key:  # only the spelling changes
                domain_id = record.row.domain_id
            else:
                if address.lookup_key in {parse_address(target).lookup_key for target in record.targets}:
                    raise ValidationFailed.at(".address", "an address cannot forward to itself", "not")
                domain_id = _claim_address(
                    connection,
                    address,
                    record.row.project_id,
                    catch_all=record.row.is_catch_all,
                    own_id=address_id,
                )
            columns = _address_columns(address, domain_id, record.row.mailbox_name)
            repo.update_address(connection, address_id, {**columns, "updated_at": now()})
    except IntegrityError as error:
        raise _unique_conflict(error, f"the address {new_address} is already in use") from None


def set_catch_all(ctx: Context, caller: Caller, address_id: str, active: bool) -> None:
    try:
        with ctx.db.write() as connection:
            scope = caller.writer(connection)
            record = _visible(connection, scope, address_id, for_update=True)
            if active and not record.row.is_catch_all:
                holder = repo.catch_all_of_domain(connection, record.row.domain_id)
                if holder is not None:
                    raise Conflict(f"the domain {record.row.domain_unicode} already has a catch-all address")
            repo.update_address(connection, address_id, {"is_catch_all": active, "updated_at": now()})
    except IntegrityError as error:
        raise _unique_conflict(error, "the domain already has a catch-all address") from None


def set_forward_targets(ctx: Context, caller: Caller, address_id: str, targets: Sequence[str]) -> None:
    with ctx.db.write() as connection:
        scope = caller.writer(connection)
        record = _visible(connection, scope, address_id, for_update=True)
        source = parse_address(record.row.address)
        parsed = parse_forward_targets(targets, source, required=not record.row.is_mailbox)
        repo.replace_forward_targets(connection, address_id, _target_rows(parsed))
        repo.update_address(connection, address_id, {"updated_at": now()})


def set_password(ctx: Context, caller: Caller, address_id: str, password: str) -> None:
    with ctx.db.read() as connection:
        scope = caller.writer(connection)
        record = _visible(connection, scope, address_id)
    if not record.row.is_mailbox:
        raise ValidationFailed.at(".password", _NO_MAILBOX, "required", missingProperty="mailbox")
    check_password_rules(password, ".password", address=record.row.address, local_part=record.row.local_part)
    hashed = hash_password(password)
    timestamp = now()
    _update(
        ctx,
        verified(scope),
        address_id,
        {"password_hash": hashed, "password_updated_at": timestamp},
        mailbox_only=".password",
    )


def set_quota(ctx: Context, caller: Caller, address_id: str, quota_in_bytes: int) -> None:
    _update(
        ctx,
        caller,
        address_id,
        {"quota_bytes": quota_in_bytes},
        mailbox_only=".quotaInBytes",
        check=lambda: check_quota(quota_in_bytes, ".quotaInBytes"),
    )


def _spam_columns(spam: SpamProtection) -> dict[str, Any]:
    return {
        "spam_active": spam.active,
        "spam_folder": spam.folder,
        "spam_min_score": spam.relocation_min_spam_score,
        "spam_auto_delete": spam.auto_delete_spam,
    }


def set_spam_protection(ctx: Context, caller: Caller, address_id: str, spam: SpamProtection) -> None:
    _update(
        ctx,
        caller,
        address_id,
        _spam_columns(spam),
        mailbox_only=".spamProtection",
        check=lambda: check_spam_protection(spam, ".spamProtection"),
    )


def set_autoresponder(ctx: Context, caller: Caller, address_id: str, responder: AutoResponder) -> None:
    _update(
        ctx,
        caller,
        address_id,
        {
            "autoresponder_active": responder.active,
            "autoresponder_message": responder.message,
            "autoresponder_starts_at": responder.starts_at,
            "autoresponder_expires_at": responder.expires_at,
        },
        mailbox_only=".autoResponder",
        check=lambda: check_autoresponder(responder, ".autoResponder"),
    )


def request_rate_limit_change(ctx: Context, caller: Caller, address_id: str, rate_limit_id: str) -> None:
    def check() -> None:
        if ctx.rate_limits.find(rate_limit_id) is None:
            raise ValidationFailed.at(".rateLimitId", f"there is no rate limit {rate_limit_id!r}", "enum")

    _update(
        ctx,
        caller,
        address_id,
        {"rate_limit_request_id": rate_limit_id},
        mailbox_only=".rateLimitId",
        check=check,
    )


def approve_rate_limit_change(ctx: Context, address_id: str) -> str:
    """The provider grants a pending request (admin command); returns the tier now in force."""
    with ctx.db.write() as connection:
        record = repo.get_address(connection, address_id)
        if record is None:
            raise NotFound("the mail address does not exist")
        requested = record.row.rate_limit_request_id
        if requested is None:
            raise ValidationFailed.at(
                ".rateLimitId", "this address has no pending rate-limit request", "required"
            )
        repo.update_address(
            connection,
            address_id,
            {"rate_limit_id": requested, "rate_limit_request_id": None, "updated_at": now()},
        )
        return str(requested)
