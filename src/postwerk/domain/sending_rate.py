"""Sending rate limits: how many recipients an account (a mailbox or a delivery box) may send mail to in an
hour through submission, counted over a sliding hour. Enforced by `postwerk.ratelimit` at the end of each
message; the tiers are those of `/v2/mail-rate-limits` (`domain.rate_limits`).

Which tier: a mailbox's own (`mailsystemSettings.rateLimitId`); a delivery box has none and gets the
installation's default tier, as does a mailbox whose tier the provider has since removed from
`POSTWERK_RATE_LIMIT_TIERS` (or that has none stored).

What counts: every recipient of an accepted message counts as one message (a tier is "messages per hour":
a message to 30 people is 30 messages sent).

The window: counts are kept per minute ("slot", whole minutes since the Unix epoch). A message is checked
against the counts of the current minute and of the `WINDOW_SLOTS` minutes before it, so a recipient counts
for at least 60 and at most 61 minutes after its message was accepted: no 60-minute span ever holds more
than the limit, and a sender waits at most a minute longer than an exact window would make it. An account's
window is at most 61 (minute, count) pairs, kept as one short text (`Window.encode`), one row per account in
the store (`store.sending_rate`): one row to lock, read and write per message, whatever the rate.

The decision for a message with n recipients: accepted and counted when the window's count plus n stays
within the limit; otherwise refused with a temporary `450 4.7.1` and not counted (the client retries later,
when older counts have left the window). A message with more recipients than the whole limit could never
pass: refused for good with `550 5.7.1`, so that the client learns at once to split it, instead of retrying
it for days.

A login the store no longer knows (an account deleted after it logged in) gets a temporary `451 4.7.1`: not
sent, and the client's retry then fails at its login (535), with the right reason. Every other failure (the
database unreachable or slow, the service down) is a temporary `451 4.3.0`: sending fails closed, the
client's queue keeps the message until the check works again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.domain.submission import login_name
from postwerk.domain.text import plain_decimal

SLOT_SECONDS = 60
WINDOW_SLOTS = 60  # the minutes before the current one that still count
MAX_RECIPIENTS = 1_000_000  # beyond any tier; a larger recipient_count is cut to it

UNKNOWN_ACCOUNT = "451 4.7.1 sending account not found (deleted after login?): not sent"
CHECK_FAILED = "451 4.3.0 sending rate limit check failed: try again later"
# Postfix's own answer when the service cannot be reached (its `default_action`): fail closed. No commas or
# braces: it is written inside Postfix's `check_policy_service { ..., { default_action = ... } }`.
SERVICE_UNAVAILABLE = "451 4.3.0 sending rate limit service unavailable: try again later"


def over_limit_reply(limit: int) -> str:
    return f"450 4.7.1 sending rate limit reached: {limit} messages per hour (each recipient counts one)"


def too_many_recipients_reply(recipients: int, limit: int) -> str:
    return (
        f"550 5.7.1 message to {recipients} recipients exceeds the sending rate limit of {limit} messages "
        "per hour: send it in smaller parts"
    )


def slot_of(timestamp: float) -> int:
    """The minute slot of a Unix time."""
    return math.floor(timestamp / SLOT_SECONDS)


@dataclass(frozen=True)
class Window:
    """Recipients counted per minute slot: (slot, count) pairs, ascending by slot, counts positive."""

    counts: tuple[tuple[int, int], ...] = ()

    def current(self, now_slot: int) -> Window:
        """Without the slots that left the window. Slots after `now_slot` (counted by a mail node whose
        clock runs ahead) stay until they leave it in turn."""
        oldest = now_slot - WINDOW_SLOTS
        if not self.counts or self.counts[0][0] >= oldest:
            return self
        return Window(tuple(pair for pair in self.counts if pair[0] >= oldest))

    @property
    def total(self) -> int:
        return sum(count for _, count in self.counts)

    @property
    def newest_slot(self) -> int | None:
        return self.counts[-1][0] if self.counts else None

    def add(self, now_slot: int, recipients: int) -> Window:
        counts = dict(self.current(now_slot).counts)
        counts[now_slot] = counts.get(now_slot, 0) + recipients
        return Window(tuple(sorted(counts.items())))

    def encode(self) -> str:
        """`slot:count` pairs separated by spaces (about 13 bytes a minute)."""
        return " ".join(f"{slot}:{count}" for slot, count in self.counts)

    @classmethod
    def decode(cls, text: str) -> Window:
        """The window `encode` wrote; ValueError for anything else."""
        counts: dict[int, int] = {}
        for pair in text.split():
            slot, separator, count = pair.partition(":")
            if not separator or not _DIGITS.fullmatch(slot) or not _DIGITS.fullmatch(count):
                raise ValueError(f"not a sending window: {text[:80]!r}")
            if int(count) > 0:
                counts[int(slot)] = counts.get(int(slot), 0) + int(count)
        return cls(tuple(sorted(counts.items())))


_DIGITS = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Decision:
    reply: str | None  # None: accepted (and counted in `window`)
    window: Window  # the window to store when accepted; the current one when refused (nothing to store)
    limit: int

    @property
    def accepted(self) -> bool:
        return self.reply is None


def decide(window: Window, recipients: int, limit: int, now_slot: int) -> Decision:
    """May a message to `recipients` recipients go, with `window` counted so far?"""
    current = window.current(now_slot)
    if recipients > limit:
        return Decision(too_many_recipients_reply(recipients, limit), current, limit)
    if current.total + recipients > limit:
        return Decision(over_limit_reply(limit), current, limit)
    return Decision(None, current.add(now_slot, recipients), limit)


def recipient_count(text: str) -> int | None:
    """Postfix's `recipient_count` attribute: None unless plain decimal digits. At the end of a message it
    is at least 1; 0 (not at the end of a message) counts as 1 all the same."""
    count = plain_decimal(text, 12)
    return None if count is None else min(max(count, 1), MAX_RECIPIENTS)


# --- who is sending -------------------------------------------------------------------------------------

_ACCOUNT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class SenderLogin:
    """How the store finds the account behind a SASL login name.

    Postwerk's Dovecot passdb answers the account's id as the user (`postwerk.logins`), so that is what
    Postfix's `sasl_username` holds; a login as typed (a mailbox's address in any spelling, a delivery box's
    name) is understood too, for a passdb that keeps the login (the system-wide layout's own choice)."""

    kind: Literal["id", "address", "name"]
    key: str  # the id (lower case), the address's lookup key, or the name (lower case)


def sender_login(login: str) -> SenderLogin | None:
    login = login.strip()
    if _ACCOUNT_ID.fullmatch(login.lower()):
        return SenderLogin("id", login.lower())
    named = login_name(login)
    return None if named is None else SenderLogin(*named)


@dataclass(frozen=True)
class Sender:
    """An account that sends: its id (the key of its window) and its tier (None: a delivery box)."""

    account_id: str
    rate_limit_id: str | None


def limit_for(sender: Sender, catalogue: RateLimitCatalogue) -> int:
    """Recipients per hour: the mailbox's tier, else the installation's default."""
    tier = catalogue.find(sender.rate_limit_id) if sender.rate_limit_id else None
    return (tier or catalogue.default).recipients_per_hour
