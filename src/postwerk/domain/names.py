"""Server-made names: project short ids, mailbox names and delivery-box logins (unique, stable, ASCII)."""

from __future__ import annotations

import re
import secrets
import uuid

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
SHORT_ID_PATTERN = re.compile(r"^p-[a-z0-9]{6}$")


def _random_suffix(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_project_short_id() -> str:
    return "p-" + _random_suffix(6)


def is_project_short_id(text: str) -> bool:
    return SHORT_ID_PATTERN.match(text) is not None


def is_project_reference(text: str) -> bool:
    """A project is named by its UUID or its short id; anything else names no project."""
    if is_project_short_id(text):
        return True
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def new_mailbox_name() -> str:
    return "mb-" + _random_suffix(10)


def new_delivery_box_name() -> str:
    # The delivery box's SMTP login: no `@`, so it can never be mistaken for a mailbox login.
    return "db-" + _random_suffix(10)
