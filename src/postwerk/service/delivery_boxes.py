"""Delivery boxes: send-only SMTP accounts for web applications and scripts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError

from postwerk.domain.errors import Conflict, NotFound
from postwerk.domain.names import new_delivery_box_name
from postwerk.domain.passwords import check_password_rules, hash_password
from postwerk.domain.text import require_safe_text
from postwerk.domain.tokens import TokenScope
from postwerk.service import Context, new_id, now
from postwerk.service.access import Caller
from postwerk.service.projects import visible_project
from postwerk.store import repository as repo
from postwerk.store.repository import Page

MAX_DESCRIPTION_LENGTH = 1000


def create(ctx: Context, caller: Caller, project_reference: str, description: str, password: str) -> str:
    with ctx.db.read() as connection:  # who asks, and may they, before the password is hashed
        scope = caller.writer(connection)
        visible_project(connection, scope, project_reference)
    require_safe_text(description, ".description", max_length=MAX_DESCRIPTION_LENGTH)
    check_password_rules(password, ".password")
    hashed = hash_password(password)
    box_id = new_id()
    timestamp = now()
    for _ in range(10):  # names are random: retry the rare collision
        try:
            with ctx.db.write() as connection:
                project = visible_project(connection, scope, project_reference)
                repo.insert_delivery_box(
                    connection,
                    {
                        "id": box_id,
                        "project_id": project.id,
                        "name": new_delivery_box_name(),
                        "description": description,
                        "password_hash": hashed,
                        "password_updated_at": timestamp,
                        "authentication_enabled": True,
                        "sending_enabled": True,
                        "created_at": timestamp,
                        "updated_at": timestamp,
                    },
                )
            return box_id
        except IntegrityError as error:
            if not repo.is_unique_violation(error):
                raise
    raise Conflict("could not find a free delivery box name")


def _visible(connection: Connection, scope: TokenScope, box_id: str) -> Row[Any]:
    row = repo.get_delivery_box(connection, box_id)
    if row is None or not scope.may_see(row.project_id):
        raise NotFound("the delivery box does not exist")
    return row


def get(ctx: Context, caller: Caller, box_id: str) -> Row[Any]:
    with ctx.db.read() as connection:
        return _visible(connection, caller.scope(connection), box_id)


def list_for_project(
    ctx: Context, caller: Caller, project_reference: str, search: str | None, page: Page
) -> tuple[list[Row[Any]], int]:
    with ctx.db.read() as connection:
        project = visible_project(connection, caller.scope(connection), project_reference)
        return repo.list_delivery_boxes(connection, project.id, search, page)


def set_description(ctx: Context, caller: Caller, box_id: str, description: str) -> None:
    with ctx.db.write() as connection:
        scope = caller.writer(connection)
        _visible(connection, scope, box_id)
        require_safe_text(description, ".description", max_length=MAX_DESCRIPTION_LENGTH)
        repo.update_delivery_box(connection, box_id, {"description": description, "updated_at": now()})


def set_password(ctx: Context, caller: Caller, box_id: str, password: str) -> None:
    check_password_rules(password, ".password")
    with ctx.db.read() as connection:
        scope = caller.writer(connection)
        _visible(connection, scope, box_id)
    hashed = hash_password(password)
    timestamp = now()
    with ctx.db.write() as connection:
        _visible(connection, scope, box_id)
        repo.update_delivery_box(
            connection,
            box_id,
            {"password_hash": hashed, "password_updated_at": timestamp, "updated_at": timestamp},
        )


def delete(ctx: Context, caller: Caller, box_id: str) -> None:
    with ctx.db.write() as connection:
        scope = caller.writer(connection)
        _visible(connection, scope, box_id)
        repo.delete_delivery_box(connection, box_id)
