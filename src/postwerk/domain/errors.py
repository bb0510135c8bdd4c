"""Errors the domain raises. Each knows its kind; the API maps kinds to wire bodies in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ErrorKind(Enum):
    VALIDATION = "validation"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"


class DomainError(Exception):
    kind: ErrorKind = ErrorKind.VALIDATION

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldIssue:
    """One broken rule, located the way mittwald clients expect (`.mailbox.quotaInBytes`)."""

    path: str
    message: str
    type: str
    context: dict[str, str] = field(default_factory=dict)


class ValidationFailed(DomainError):
    kind = ErrorKind.VALIDATION

    def __init__(self, *issues: FieldIssue) -> None:
        super().__init__("; ".join(issue.message for issue in issues) or "validation failed")
        self.issues = list(issues)

    @classmethod
    def at(cls, path: str, message: str, type_: str = "format", **context: str) -> ValidationFailed:
        return cls(FieldIssue(path=path, message=message, type=type_, context=dict(context)))


class Unauthorized(DomainError):
    kind = ErrorKind.UNAUTHORIZED


class Forbidden(DomainError):
    kind = ErrorKind.FORBIDDEN


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND


class Conflict(DomainError):
    kind = ErrorKind.CONFLICT
