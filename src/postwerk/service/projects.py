"""Projects, their domains, and API tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from postwerk.domain.addresses import DomainName, parse_domain
from postwerk.domain.dkim import KeyPair, KeyStatus, new_key_pair, new_selector
from postwerk.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from postwerk.domain.names import is_project_reference, new_project_short_id
from postwerk.domain.text import require_safe_text
from postwerk.domain.tokens import TokenScope, new_token, token_digest
from postwerk.service import Context, new_id, now
from postwerk.service.access import Caller
from postwerk.store import dkim_keys
from postwerk.store import repository as repo
from postwerk.store.repository import Page, Sorting

MAX_DESCRIPTION_LENGTH = 1000


def _find(connection: Connection, reference: str) -> Row[Any] | None:
    """A project by UUID or short id; anything else names no project (and is never sent to the database)."""
    return repo.find_project(connection, reference.lower()) if is_project_reference(reference) else None


def visible_project(connection: Connection, scope: TokenScope, reference: str) -> Row[Any]:
    """The project a path names (UUID or short id), if the token may see it. Unknown and foreign projects
    answer alike, so a token cannot probe for other customers' projects."""
    project = _find(connection, reference)
    if project is None or not scope.may_see(project.id):
        raise Forbidden("the project does not exist or this token may not access it")
    return project


def scope_and_visible_project_id(
    connection: Connection, caller: Caller, reference: str
) -> tuple[TokenScope, str]:
    """`caller.scope` and `visible_project(...).id`, in one query where a token is to be checked."""
    if caller.known_scope is not None or not is_project_reference(reference):
        scope = caller.scope(connection)
        return scope, visible_project(connection, scope, reference).id
    row = repo.find_project_id_with_token(connection, reference.lower(), caller.digest())
    scope = caller.scope_from(row)
    if row.found_project_id is None or not scope.may_see(row.found_project_id):
        raise Forbidden("the project does not exist or this token may not access it")
    return scope, str(row.found_project_id)


def _existing_project(connection: Connection, reference: str) -> Row[Any]:
    """The project an admin command names (UUID or short id); no token scope applies."""
    project = _find(connection, reference)
    if project is None:
        raise NotFound(f"no project {reference!r}")
    return project


def create_project(ctx: Context, description: str, customer_id: str | None = None) -> tuple[str, str]:
    require_safe_text(description, ".description", max_length=MAX_DESCRIPTION_LENGTH)
    project_id = new_id()
    timestamp = now()
    for _ in range(10):  # short ids are random: retry the rare collision
        short_id = new_project_short_id()
        try:
            with ctx.db.write() as connection:
                repo.insert_project(
                    connection,
                    {
                        "id": project_id,
                        "short_id": short_id,
                        "description": description,
                        "customer_id": customer_id or new_id(),
                        "enabled": True,
                        "created_at": timestamp,
                        "updated_at": timestamp,
                    },
                )
            return project_id, short_id
        except IntegrityError as error:
            if not repo.is_unique_violation(error):
                raise
    raise Conflict("could not find a free short id for the project")


def get_project(ctx: Context, caller: Caller, reference: str) -> Row[Any]:
    with ctx.db.read() as connection:
        return visible_project(connection, caller.scope(connection), reference)


def list_projects(
    ctx: Context,
    caller: Caller,
    search: str | None,
    customer_id: str | None,
    sorting: Sequence[Sorting],
    page: Page,
) -> tuple[list[Row[Any]], int]:
    with ctx.db.read() as connection:
        scope = caller.scope(connection)
        return repo.list_projects(
            connection,
            only_id=None if scope.is_admin else scope.project_id,
            customer_id=customer_id,
            search=search,
            sorting=sorting,
            page=page,
        )


def delete_project(ctx: Context, reference: str) -> None:
    with ctx.db.write() as connection:
        project = _existing_project(connection, reference)
        repo.delete_project(connection, project.id, deleted_at=now())


def add_domain(ctx: Context, name: str, project_reference: str) -> DomainName:
    """Assign a domain to a project, with its first DKIM key pair (made before the transaction opens)."""
    domain = parse_domain(name)
    key_pair = new_key_pair()
    try:
        with ctx.db.write() as connection:
            project = _existing_project(connection, project_reference)
            if _already_assigned(connection, domain, project.id):
                return domain
            domain_id = new_id()
            repo.insert_domain(
                connection,
                {
                    "id": domain_id,
                    "project_id": project.id,
                    "name_ascii": domain.ascii,
                    "name_unicode": domain.unicode,
                    "name_folded": domain.folded,
                    "created_at": now(),
                },
            )
            insert_first_dkim_key(connection, domain_id, key_pair)
    except IntegrityError as error:
        if not repo.is_unique_violation(error):
            raise
        # Another assignment of this name (or of its twin) committed first: answer as if it had been seen.
        with ctx.db.read() as connection:
            project = _existing_project(connection, project_reference)
            if _already_assigned(connection, domain, project.id):
                return domain
        raise Conflict(f"the domain {domain.unicode} was assigned elsewhere meanwhile") from None
    return domain


def _already_assigned(connection: Connection, domain: DomainName, project_id: str) -> bool:
    """True when the domain is this project's already; refuses it when another project holds it or when a
    hosted domain folds alike (`DomainName.folded`: one name to Postfix's maps)."""
    existing = repo.find_domain(connection, domain.ascii)
    if existing is not None:
        if existing.project_id == project_id:
            return True
        raise Conflict(f"the domain {domain.unicode} is already assigned to another project")
    twin = repo.find_domain_folded(connection, domain.folded)
    if twin is not None:
        raise Conflict(
            f"the domain {domain.unicode} cannot be hosted beside {twin.name_unicode}: mail servers fold "
            f"both names to {domain.folded} (ß is ss to them), so mail to one could reach the other"
        )
    return False


def insert_first_dkim_key(connection: Connection, domain_id: str, pair: KeyPair) -> None:
    """A domain's first DKIM key, active at once (its selector names this month)."""
    timestamp = now()
    dkim_keys.insert_key_pair(
        connection,
        key_id=new_id(),
        domain_id=domain_id,
        selector=new_selector(timestamp, ()),
        pair=pair,
        status=KeyStatus.ACTIVE,
        made_at=timestamp,
    )


def remove_domain(ctx: Context, name: str, *, with_addresses: bool) -> int:
    """Unassign a domain. Its addresses go with it only when asked: mail would stop for them."""
    domain = parse_domain(name)
    with ctx.db.write() as connection:
        existing = repo.find_domain(connection, domain.ascii)
        if existing is None:
            raise NotFound(f"the domain {domain.unicode} is not hosted here")
        count = repo.count_addresses_in_domain(connection, existing.id)
        if count and not with_addresses:
            raise Conflict(
                f"the domain {domain.unicode} still has {count} mail address(es); "
                "remove them first or pass --with-addresses"
            )
        repo.delete_domain(connection, existing.id, deleted_at=now())
        return count


def list_domains(ctx: Context, project_reference: str | None = None) -> list[Row[Any]]:
    with ctx.db.read() as connection:
        project_id = None
        if project_reference is not None:
            project = _existing_project(connection, project_reference)
            project_id = project.id
        return repo.list_domains(connection, project_id)


def create_token(
    ctx: Context, *, admin: bool, project_reference: str | None, read_only: bool
) -> tuple[str, str]:
    """A new token: (its id, for revoking it later; the token itself, shown once)."""
    if admin == (project_reference is not None):
        raise ValidationFailed.at(".scope", "a token is either --admin or for one --project", "oneOf")
    token, token_id = new_token(), new_id()
    with ctx.db.write() as connection:
        project_id = None
        if project_reference is not None:
            project = _existing_project(connection, project_reference)
            project_id = project.id
        repo.insert_token(
            connection,
            {
                "id": token_id,
                "token_sha256": token_digest(token),
                "project_id": project_id,
                "is_admin": admin,
                "read_only": read_only,
                "created_at": now(),
            },
        )
    return token_id, token


def list_tokens(ctx: Context) -> list[Any]:
    with ctx.db.read() as connection:
        return repo.list_tokens(connection)


def revoke_token(ctx: Context, token_id: str) -> None:
    """Takes effect on the next request: tokens are checked on every one."""
    with ctx.db.write() as connection:
        if not repo.delete_token(connection, token_id):
            raise NotFound(f"no token {token_id!r}")


def has_tokens(ctx: Context) -> bool:
    with ctx.db.read() as connection:
        return repo.any_token(connection)


def require_caller(ctx: Context, caller: Caller) -> None:
    """For routes that show no project's data but still need a valid token."""
    with ctx.db.read() as connection:
        caller.scope(connection)
