"""The quota rule at RCPT time: may a message for this recipient be accepted, given the mailboxes it reaches?

A recipient is expanded the way Postfix expands it through the routes (`virtual_alias_maps`, see the
`routes` and `catch_alls` maps): the exact address, then the address without its `+extension`
(`bob+tag@` -> `bob@`), then the catch-all of the domain; an address that forwards reaches its targets, each
expanded again (a hosted target reaches its mailbox, a foreign one leaves the installation and has no quota
here). The message is refused when any mailbox it reaches is full: delivering to some and bouncing for the
others later is what the RCPT check exists to avoid.

An extension that only the recipient has (`bob+tag@` reaching `bob@` or the catch-all) stays behind: every
target gets the address exactly as configured (`friend@elsewhere.example`, never `friend+tag@`, which the
remote may not know), as Postfix does with `propagate_unmatched_extensions = canonical` (main.cf).

The same expansion is the reference for the routes Postfix reads (the `routes.cf` template answers with every
final destination at once, so Postfix does not re-expand and loops end): `expand` gives that answer, and a
test holds the SQL to it for the same cases. An address whose forwards lead only round in a circle (no
mailbox, nothing outside, nothing refused) is a forwarding loop: refused at RCPT with `LOOP`.

Pure: the addresses are looked up through a function the caller passes (the policy service hands it the
store's lookups), one call per level of forwarding, so a plain recipient costs one lookup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from postwerk.domain.addresses import envelope_domain, lookup_key, without_angle_brackets
from postwerk.domain.quotas import UNLIMITED

RECIPIENT_DELIMITER = "+"  # main.cf's recipient_delimiter
# Bounds for odd input and odd data: an address longer than SMTP allows is no hosted address, and a
# forwarding web wider or deeper than this is not followed further (Postfix's own expansion limits are
# 1000 as well).
MAX_RECIPIENT_LENGTH = 1024
MAX_ADDRESSES = 1000
MAX_LEVELS = 20

LOOP_REPLY = "550 5.4.6 mail forwarding loop"
DISABLED_REPLY = "550 5.2.1 receiving mail is disabled for this address"


@dataclass(frozen=True)
class RecipientKeys:
    """The keys a recipient is looked up by, in order of precedence."""

    exact: str
    without_extension: str | None
    domain: str  # A-label, lower case: the catch-all is looked up by it

    @property
    def address_keys(self) -> tuple[str, ...]:
        return (self.exact,) if self.without_extension is None else (self.exact, self.without_extension)


@dataclass(frozen=True)
class Mailbox:
    mailbox_id: str
    quota_bytes: int  # UNLIMITED (-1) or bytes
    usage_bytes: int


@dataclass(frozen=True)
class Destination:
    """A hosted address as the routes see it: its mailbox (None for a forwarding address) and the targets
    it forwards to (as routed: local part @ A-label domain)."""

    key: str
    mailbox: Mailbox | None = None
    forwards: tuple[str, ...] = ()
    receiving_disabled: bool = False
    address_id: str | None = None  # None: not known to the caller (tests); the key stands in


@dataclass(frozen=True)
class Found:
    """What one lookup returned: hosted addresses by key, catch-alls by A-label domain."""

    addresses: Mapping[str, Destination] = field(default_factory=dict)
    catch_alls: Mapping[str, Destination] = field(default_factory=dict)


# keys to look up (exact and without extension), domains whose catch-all to look up -> what exists
Lookup = Callable[[Sequence[str], Sequence[str]], Found]


def recipient_keys(recipient: str) -> RecipientKeys | None:
    """The lookup keys of an envelope recipient (Unicode or A-label domain, any case), or None when it
    cannot be a hosted address (no `@`, no local part, a domain that is no domain, far too long)."""
    if not recipient or len(recipient) > MAX_RECIPIENT_LENGTH:
        return None
    local_part, at, domain = without_angle_brackets(recipient).rpartition("@")
    if not at or not local_part:
        return None
    ascii_domain = envelope_domain(domain)
    if ascii_domain is None:
        return None
    exact = lookup_key(local_part, ascii_domain)
    without_extension = None
    # Like Postfix (split_addr): the first delimiter after the first character splits, an empty extension
    # included; a leading one does not.
    cut = local_part.find(RECIPIENT_DELIMITER, 1)
    if cut > 0:
        without_extension = lookup_key(local_part[:cut], ascii_domain)
    return RecipientKeys(exact, without_extension, ascii_domain)


def route(keys: RecipientKeys, found: Found) -> Destination | None:
    """The one hosted address a recipient resolves to: exact, then without extension, then the catch-all."""
    for key in keys.address_keys:
        destination = found.addresses.get(key)
        if destination is not None:
            return destination
    return found.catch_alls.get(keys.domain)


def is_over_quota(mailbox: Mailbox, message_size: int = 0) -> bool:
    """Full when the usage has reached the quota, or when a message of the announced size would not fit.
    -1 is unlimited."""
    if mailbox.quota_bytes == UNLIMITED or mailbox.quota_bytes < 0:
        return False
    if mailbox.usage_bytes >= mailbox.quota_bytes:
        return True
    return message_size > 0 and mailbox.usage_bytes + message_size > mailbox.quota_bytes


def accepted_at_any_size(destination: Destination, size_limit: int) -> bool:
    """The address a recipient's exact key finds can take any message up to `size_limit` without a question:
    a plain mailbox (receiving, no forwards of its own) with room for one of that size. Postfix's `room` map
    answers OK for exactly these before the policy service is asked (templates/postfix/room.cf, held to
    this by tests/mail)."""
    mailbox = destination.mailbox
    if mailbox is None or destination.forwards or destination.receiving_disabled:
        return False
    return not is_over_quota(mailbox, size_limit)


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclass
class Expansion:
    """Where a message for one recipient goes: every final destination, each once."""

    hosted: bool = False  # the recipient is a hosted address (directly, by +extension or the catch-all)
    refused: bool = False  # the recipient's own address (by that same precedence) has receiving disabled
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)  # by mailbox id, in the order found
    disabled: list[str] = field(default_factory=list)  # reached addresses that refuse mail (their ids)
    outside: list[str] = field(default_factory=list)  # forward targets that are no hosted address
    truncated: bool = False  # the forwarding web was larger or deeper than followed

    @property
    def is_loop(self) -> bool:
        """A hosted recipient whose forwards lead only round in a circle: nothing could ever receive it."""
        return self.hosted and not self.truncated and not (self.mailboxes or self.disabled or self.outside)


def expand(recipient: str, lookup: Lookup) -> Expansion:
    """Follow a recipient through the routes, each hosted address once (so loops end), breadth first."""
    result = Expansion()
    first = recipient_keys(_normalised(recipient))
    if first is None:
        return result
    seen: set[str] = set()
    # Each pending entry: the keys to route, and the target as written when it came from a forward.
    level: list[tuple[RecipientKeys, str | None]] = [(first, None)]
    for depth in range(MAX_LEVELS + 1):
        if not level:
            break
        if depth == MAX_LEVELS:
            result.truncated = True
            break
        found = lookup(
            _unique(key for keys, _ in level for key in keys.address_keys),
            _unique(keys.domain for keys, _ in level),
        )
        next_level: list[tuple[RecipientKeys, str | None]] = []
        for keys, written in level:
            destination = route(keys, found)
            if destination is None:
                if written is not None:  # a forward target that leaves the installation
                    _add_once(result.outside, written)
                continue
            if written is None:
                result.hosted = True
            if destination.key in seen:
                continue
            seen.add(destination.key)
            if destination.receiving_disabled:
                # Refused by its own route; its forwards are not followed.
                result.refused = result.refused or written is None
                _add_once(result.disabled, destination.address_id or destination.key)
                continue
            if destination.mailbox is not None:
                result.mailboxes.setdefault(destination.mailbox.mailbox_id, destination.mailbox)
            for target in destination.forwards:
                target_keys = recipient_keys(target)
                if target_keys is None:
                    _add_once(result.outside, target)
                elif len(seen) + len(next_level) < MAX_ADDRESSES:
                    next_level.append((target_keys, target))
                else:
                    result.truncated = True
        level = next_level
    return result


def reached_mailboxes(recipient: str, lookup: Lookup) -> list[Mailbox]:
    """Every hosted mailbox a message for `recipient` is delivered into (following forwards, each address
    once, so loops end), in the order found."""
    return list(expand(recipient, lookup).mailboxes.values())


def full_mailboxes(recipient: str, lookup: Lookup, message_size: int = 0) -> list[Mailbox]:
    """The mailboxes reached by `recipient` that cannot take the message: refuse it when any."""
    return [box for box in reached_mailboxes(recipient, lookup) if is_over_quota(box, message_size)]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _add_once(values: list[str], value: str) -> None:
    if value not in values:
        values.append(value)
