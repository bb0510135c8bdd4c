"""Forward targets of an address: valid addresses in any domain, never the address itself, no duplicates."""

from __future__ import annotations

from collections.abc import Sequence

from postwerk.domain.addresses import MailAddress, parse_address
from postwerk.domain.errors import FieldIssue, ValidationFailed

MAX_FORWARD_TARGETS = 100


def parse_forward_targets(
    targets: Sequence[str], source: MailAddress, path: str = ".forwardAddresses", *, required: bool
) -> list[MailAddress]:
    if required and not targets:
        raise ValidationFailed.at(
            path, "a forwarding address needs at least one target", "minItems", limit="1"
        )
    if len(targets) > MAX_FORWARD_TARGETS:
        raise ValidationFailed.at(
            path,
            f"must NOT have more than {MAX_FORWARD_TARGETS} items",
            "maxItems",
            limit=str(MAX_FORWARD_TARGETS),
        )
    parsed: list[MailAddress] = []
    issues: list[FieldIssue] = []
    seen: set[str] = set()
    for index, text in enumerate(targets):
        item_path = f"{path}[{index}]"
        try:
            target = parse_address(text, item_path)
        except ValidationFailed as error:
            issues.extend(error.issues)
            continue
        if target.lookup_key == source.lookup_key:
            issues.append(FieldIssue(item_path, "an address cannot forward to itself", "not"))
        elif target.lookup_key in seen:
            issues.append(FieldIssue(item_path, f"{text!r} is listed twice", "uniqueItems"))
        else:
            seen.add(target.lookup_key)
            parsed.append(target)
    if issues:
        raise ValidationFailed(*issues)
    return parsed
