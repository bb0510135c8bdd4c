"""The quota rule at RCPT time: may a message for this recipient be accepted, given the mailboxes it reaches?

A recipient is expanded the way Postfix expands it through the routes (`virtual_alias_maps`, see the
`routes` and `catch_alls` maps): the exact address, then the address without its `+extension`
(`bob+tag@` -> `bob@`), then the catch-all of the domain; an address that forwards reaches its targets, each
expanded again (a hosted target reaches its mailbox, a foreign one leaves the installation and has no quota
here). The message is refused when any mailbox it reaches is full: delivering to some and bouncing for the
others later is what the RCPT check exists to avoid.

Pure: the addresses are looked up through a function the caller passes (the policy service hands it the
store's lookups), one call per level of forwarding, so a plain recipient costs one lookup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import idna

from postwerk.domain.addresses import lookup_key
from postwerk.domain.quotas import UNLIMITED

RECIPIENT_DELIMITER = "+"  # main.cf's recipient_delimiter
# Bounds for odd input and odd data: an address longer than SMTP allows is no hosted address, and a
# forwarding web wider or deeper than this is not followed further (Postfix's own expansion limits are
# 1000 as well).
MAX_RECIPIENT_LENGTH = 1024
MAX_ADDRESSES = 1000
MAX_LEVELS = 20


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


@dataclass(frozen=True)
class Found:
    """What one lookup returned: hosted addresses by key, catch-alls by A-label domain."""

    addresses: Mapping[str, Destination] = field(default_factory=dict)
    catch_alls: Mapping[str, Destination] = field(default_factory=dict)


# keys to look up (exact and without extension), domains whose catch-all to look up -> what exists
Lookup = Callable[[Sequence[str], Sequence[str]], Found]


def _ascii_domain(domain: str) -> str | None:
    domain = domain.rstrip(".")
    if not domain:
        return None
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return None


def recipient_keys(recipient: str) -> RecipientKeys | None:
    """The lookup keys of an envelope recipient (Unicode or A-label domain, any case), or None when it
    cannot be a hosted address (no `@`, no local part, a domain that is no domain, far too long)."""
    if not recipient or len(recipient) > MAX_RECIPIENT_LENGTH:
        return None
    if recipient.startswith("<") and recipient.endswith(">"):
        recipient = recipient[1:-1]
    local_part, at, domain = recipient.rpartition("@")
    if not at or not local_part:
        return None
    ascii_domain = _ascii_domain(domain)
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


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def reached_mailboxes(recipient: str, lookup: Lookup) -> list[Mailbox]:
    """Every hosted mailbox a message for `recipient` is delivered into (following forwards, each address
    once, so loops end), in the order found."""
    first = recipient_keys(_normalised(recipient))
    if first is None:
        return []
    mailboxes: dict[str, Mailbox] = {}
    seen: set[str] = set()
    level: list[RecipientKeys] = [first]
    for _ in range(MAX_LEVELS):
        if not level:
            break
        found = lookup(
            _unique(key for keys in level for key in keys.address_keys), _unique(k.domain for k in level)
        )
        next_level: list[RecipientKeys] = []
        for keys in level:
            destination = route(keys, found)
            if destination is None or destination.key in seen or destination.receiving_disabled:
                # Not hosted (relayed out), already counted, or refused by its own route.
                continue
            seen.add(destination.key)
            if destination.mailbox is not None:
                mailboxes.setdefault(destination.mailbox.mailbox_id, destination.mailbox)
            for target in destination.forwards:
                target_keys = recipient_keys(target)
                if target_keys is not None and len(seen) + len(next_level) < MAX_ADDRESSES:
                    next_level.append(target_keys)
        level = next_level
    return list(mailboxes.values())


def full_mailboxes(recipient: str, lookup: Lookup, message_size: int = 0) -> list[Mailbox]:
    """The mailboxes reached by `recipient` that cannot take the message: refuse it when any."""
    return [box for box in reached_mailboxes(recipient, lookup) if is_over_quota(box, message_size)]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
