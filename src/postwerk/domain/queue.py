"""The mail queue as the provider sees it (`postwerk queue`): queued messages, and which of them a sender
filter selects.

A sender filter matches an envelope sender exactly, but in any case and with either form of an
internationalised domain (`Info@Bücher.example` selects mail from `info@xn--bcher-kva.example`): both sides
are compared by their lookup key (`postwerk.domain.addresses.lookup_key`). No `+extension` is stripped and
no catch-all applies: `bob+news@` is another sender than `bob@`. The empty filter (`""` or `<>`) selects the
null sender (bounces and other reports).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from postwerk.domain.addresses import envelope_domain, lookup_key, without_angle_brackets
from postwerk.domain.errors import ValidationFailed

NULL_SENDER = ""


@dataclass(frozen=True)
class QueuedRecipient:
    address: str
    delay_reason: str | None = None  # why the last attempt failed (deferred mail)


@dataclass(frozen=True)
class QueuedMessage:
    queue_id: str
    queue_name: str  # Postfix's queue: "incoming", "active", "deferred" or "hold"
    arrival_time: datetime
    size: int
    sender: str  # "" for the null sender
    recipients: tuple[QueuedRecipient, ...]


def _ascii_domain(domain: str) -> str:
    # Not a domain IDNA accepts (a queue holds what clients sent): compared as written, case-folded.
    return envelope_domain(domain) or unicodedata.normalize("NFC", domain.rstrip(".")).casefold()


def sender_key(sender: str) -> str:
    """What a sender is compared by: its lookup key (case-folded local part, A-label domain); the null
    sender is ""."""
    sender = without_angle_brackets(sender.strip()).strip()
    if not sender:
        return NULL_SENDER
    local_part, at, domain = sender.rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", sender).casefold()
    return lookup_key(local_part, _ascii_domain(domain))


def sender_filter(text: str, path: str = "--sender") -> str:
    """The key of a `--sender` argument: an address (`local@domain`), or `<>` / "" for the null sender."""
    key = sender_key(text)
    if key != NULL_SENDER and "@" not in key:
        raise ValidationFailed.at(path, f"{text!r} is not a mail address (or <> for the null sender)")
    return key


def by_sender(messages: Iterable[QueuedMessage], key: str | None) -> list[QueuedMessage]:
    """The messages whose envelope sender has the key `key` (from `sender_filter`); all when None."""
    if key is None:
        return list(messages)
    return [message for message in messages if sender_key(message.sender) == key]
