"""Project sender blacklist and whitelist entries.

Entries follow the official pattern (ASCII local part, `*` wildcards in domain labels). Internationalised
domains are accepted and stored as A-labels so that responses still match the official ASCII pattern.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import idna

from postwerk.domain.errors import FieldIssue, ValidationFailed
from postwerk.domain.text import require_safe_text

OFFICIAL_PATTERN = re.compile(r"^([a-zA-Z0-9.!#$%&'*\/=?^_{|}~-]+@[a-zA-Z0-9-*]+(?:\.([a-zA-Z0-9-]+|\*))+)$")
_LOCAL_PART = re.compile(r"^[a-zA-Z0-9.!#$%&'*\/=?^_{|}~-]+$")
MAX_ENTRIES = 1000
MAX_ENTRY_LENGTH = 254


def _ascii_label(label: str) -> str:
    if label == "*" or label.isascii():
        return label.lower()
    return idna.encode(label, uts46=True, transitional=False).decode("ascii")


def normalise_entry(entry: str, path: str) -> str:
    require_safe_text(entry, path, max_length=MAX_ENTRY_LENGTH * 4)
    if "@" not in entry:
        raise ValidationFailed.at(
            path,
            "must look like local@domain (`*` wildcards allowed)",
            "pattern",
            pattern=OFFICIAL_PATTERN.pattern,
        )
    local_part, domain = entry.rsplit("@", 1)
    if not local_part.isascii() or not _LOCAL_PART.fullmatch(local_part):
        raise ValidationFailed.at(
            path,
            "the part before @ must be ASCII letters, digits, `*` or one of .!#$%&'/=?^_{|}~-",
            "pattern",
            pattern=OFFICIAL_PATTERN.pattern,
        )
    try:
        labels = [_ascii_label(label) for label in domain.split(".")]
    except (idna.IDNAError, UnicodeError) as error:
        raise ValidationFailed.at(
            path, f"{domain!r} is not a valid domain: {error}", "pattern", pattern=OFFICIAL_PATTERN.pattern
        ) from None
    normalised = f"{local_part}@{'.'.join(labels)}"
    if len(normalised) > MAX_ENTRY_LENGTH or not OFFICIAL_PATTERN.fullmatch(normalised):
        raise ValidationFailed.at(
            path,
            f"{entry!r} does not match local@domain with `*` wildcards",
            "pattern",
            pattern=OFFICIAL_PATTERN.pattern,
        )
    return normalised


def normalise_entries(entries: Sequence[str], path: str) -> list[str]:
    """Normalised entries in the order given, duplicates dropped."""
    if len(entries) > MAX_ENTRIES:
        raise ValidationFailed.at(
            path, f"must NOT have more than {MAX_ENTRIES} items", "maxItems", limit=str(MAX_ENTRIES)
        )
    result: list[str] = []
    issues: list[FieldIssue] = []
    for index, entry in enumerate(entries):
        try:
            normalised = normalise_entry(entry, f"{path}[{index}]")
        except ValidationFailed as error:
            issues.extend(error.issues)
            continue
        if normalised not in result:
            result.append(normalised)
    if issues:
        raise ValidationFailed(*issues)
    return result
