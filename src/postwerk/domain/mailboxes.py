"""Mailbox settings: spam protection and the autoresponder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from postwerk.domain.errors import ValidationFailed
from postwerk.domain.text import require_safe_text

SpamFolder = Literal["spam", "inbox"]
MIN_SPAM_SCORE = 0
MAX_SPAM_SCORE = 10
MAX_AUTORESPONDER_LENGTH = 10_000


@dataclass(frozen=True)
class SpamProtection:
    active: bool
    folder: SpamFolder
    relocation_min_spam_score: int
    auto_delete_spam: bool


def default_spam_protection(active: bool) -> SpamProtection:
    return SpamProtection(active=active, folder="spam", relocation_min_spam_score=5, auto_delete_spam=False)


def check_spam_protection(settings: SpamProtection, path: str) -> SpamProtection:
    score = settings.relocation_min_spam_score
    if not MIN_SPAM_SCORE <= score <= MAX_SPAM_SCORE:
        keyword, limit = (
            ("minimum", MIN_SPAM_SCORE) if score < MIN_SPAM_SCORE else ("maximum", MAX_SPAM_SCORE)
        )
        raise ValidationFailed.at(
            f"{path}.relocationMinSpamScore",
            f"must be between {MIN_SPAM_SCORE} and {MAX_SPAM_SCORE}",
            keyword,
            limit=str(limit),
        )
    return settings


@dataclass(frozen=True)
class AutoResponder:
    active: bool
    message: str | None = None
    starts_at: datetime | None = None
    expires_at: datetime | None = None


AUTORESPONDER_OFF = AutoResponder(active=False)


def _check_moment(moment: datetime | None, path: str) -> None:
    if moment is None:
        return
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationFailed.at(
            path, "must be a date-time with a time zone (such as Z or +02:00)", "format", format="date-time"
        )
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed.at(
            path, "is out of the range of dates", "format", format="date-time"
        ) from None


def check_autoresponder(responder: AutoResponder, path: str) -> AutoResponder:
    _check_moment(responder.starts_at, f"{path}.startsAt")
    _check_moment(responder.expires_at, f"{path}.expiresAt")
    if responder.message is not None:
        require_safe_text(
            responder.message, f"{path}.message", allow_newlines=True, max_length=MAX_AUTORESPONDER_LENGTH
        )
    if responder.active and not (responder.message or "").strip():
        raise ValidationFailed.at(
            f"{path}.message", "an active autoresponder needs a message", "minLength", limit="1"
        )
    if responder.starts_at and responder.expires_at and responder.expires_at <= responder.starts_at:
        raise ValidationFailed.at(
            f"{path}.expiresAt", "must be later than startsAt", "formatMinimum", limit="startsAt"
        )
    return responder
