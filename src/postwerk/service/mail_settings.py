"""Project mail settings: the sender blacklist and whitelist."""

from __future__ import annotations

from collections.abc import Sequence

from postwerk.domain.sender_rules import normalise_entries
from postwerk.service import Context
from postwerk.service.access import Caller
from postwerk.service.projects import visible_project
from postwerk.store import repository as repo

LIST_KINDS = ("blacklist", "whitelist")


def get(ctx: Context, caller: Caller, project_reference: str) -> tuple[str, dict[str, list[str]]]:
    with ctx.db.read() as connection:
        project = visible_project(connection, caller.scope(connection), project_reference)
        return project.id, repo.sender_rule_lists(connection, project.id)


def replace(ctx: Context, caller: Caller, project_reference: str, kind: str, entries: Sequence[str]) -> None:
    with ctx.db.write() as connection:
        project = visible_project(connection, caller.writer(connection), project_reference)
        normalised = normalise_entries(entries, f".{kind}")
        repo.replace_sender_rules(connection, project.id, kind, normalised)
