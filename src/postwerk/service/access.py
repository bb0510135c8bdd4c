"""Who is asking. An API request carries a token that is checked inside the request's own transaction (one
thread hop, one database round of work); the admin commands act with a scope known in advance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from postwerk.domain.errors import Unauthorized
from postwerk.domain.tokens import TokenScope, token_digest
from postwerk.store import repository as repo


@dataclass(frozen=True)
class Caller:
    token: str | None = None
    known_scope: TokenScope | None = None

    def __repr__(self) -> str:  # the token is a secret: never in a log line or a traceback
        return f"Caller(known_scope={self.known_scope!r})"

    def scope(self, connection: Connection) -> TokenScope:
        if self.known_scope is not None:
            return self.known_scope
        return self.scope_from(repo.find_token(connection, self.digest()))

    def digest(self) -> str:
        """What the token is stored as; raises Unauthorized without a token."""
        if not self.token:
            raise Unauthorized("an access token is required (x-access-token or Authorization: Bearer)")
        return token_digest(self.token)

    @staticmethod
    def scope_from(row: Any) -> TokenScope:
        """The scope of a token row found by `digest()` (columns id, is_admin, project_id, read_only), which
        a query may fetch together with what the request reads (one round trip)."""
        if row is None or row.id is None:
            raise Unauthorized("the access token is not valid")
        return TokenScope(
            token_id=row.id,
            is_admin=bool(row.is_admin),
            project_id=row.project_id,
            read_only=bool(row.read_only),
        )

    def writer(self, connection: Connection) -> TokenScope:
        """The scope, if it may change things."""
        scope = self.scope(connection)
        scope.require_write()
        return scope


def verified(scope: TokenScope) -> Caller:
    return Caller(known_scope=scope)


ADMIN = verified(TokenScope(token_id="admin-command", is_admin=True, project_id=None, read_only=False))
