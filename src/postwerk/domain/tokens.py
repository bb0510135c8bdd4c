"""API tokens: 256 random bits shown once, stored only as SHA-256 so a check is one index probe."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from postwerk.domain.errors import Forbidden

TOKEN_PREFIX = "pw_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    # A fast hash is right here: the token has 256 bits of entropy, nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class TokenScope:
    """What a token may see: every project (admin) or one; read-only tokens may not change anything."""

    token_id: str
    is_admin: bool
    project_id: str | None
    read_only: bool

    def may_see(self, project_id: str) -> bool:
        return self.is_admin or self.project_id == project_id

    def require_write(self) -> None:
        if self.read_only:
            raise Forbidden("this token is read-only")
