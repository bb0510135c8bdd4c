"""Mailbox quota rules."""

from __future__ import annotations

from postwerk.domain.errors import ValidationFailed

UNLIMITED = -1
MIN_QUOTA_BYTES = 209_715_200  # 200 MiB, as mittwald documents
MAX_QUOTA_BYTES = 2**63 - 1


def check_quota(quota_in_bytes: int, path: str) -> int:
    if quota_in_bytes == UNLIMITED:
        return quota_in_bytes
    if quota_in_bytes < MIN_QUOTA_BYTES:
        raise ValidationFailed.at(
            path,
            f"must be -1 (unlimited) or at least {MIN_QUOTA_BYTES} (200 MiB)",
            "minimum",
            limit=str(MIN_QUOTA_BYTES),
            comparison=">=",
        )
    if quota_in_bytes > MAX_QUOTA_BYTES:
        raise ValidationFailed.at(
            path, f"must be at most {MAX_QUOTA_BYTES}", "maximum", limit=str(MAX_QUOTA_BYTES), comparison="<="
        )
    return quota_in_bytes
