"""Dovecot's passdb, answered by Postwerk: a login is found by the domain's own rule for addresses.

Why not an SQL passdb: Dovecot 2.3 can only lower-case the ASCII letters of a login (`%L`), so no query finds
`ÄRGER@…` or a decomposed (NFD) spelling of `ärger@…`, although `parse_address(...).lookup_key`, the one
identity of an address on the installation, finds both. Dovecot's `dict` passdb asks this server instead,
through a `proxy:` dict on a unix socket (the protocol in `postwerk.dovecot_dict`), for
`shared/passdb/<service>/<the login as typed>`; the answer is a JSON object with the mailbox's password hash
and `user` = the mailbox id (which names the storage, as the SQL passdb's answer did), or "not found".
For the service `smtp` (Postfix's submission services) a login without `@` is a delivery box's name,
answered with `user` = the delivery box's id; delivery boxes never log in elsewhere
(`postwerk.domain.submission`).

Dovecot verifies the hash itself, in its auth worker processes (the dict passdb is a blocking one), so the
password never reaches Postwerk and verifications run on every core. Nothing is cached, here or in Dovecot
(`auth_cache_size = 0`): every login reads the store, so a new mailbox, a changed password or a renamed
address counts at the very next login.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from postwerk.domain.submission import Account, login_name, may_log_in
from postwerk.dovecot_dict import NOT_FOUND, DictProtocol, failed, found, unescape
from postwerk.unix_sockets import Reply

log = logging.getLogger("postwerk.logins")

PASSDB_PREFIX = "shared/passdb/"

# Lookup key -> (mailbox id, password hash), or None: blocking, reads the store.
Lookup = Callable[[str], tuple[str, str | None] | None]
# Delivery box name -> (the box, password hash), or None: blocking, reads the store.
BoxLookup = Callable[[str], tuple[Account, str | None] | None]


def _no_boxes(_name: str) -> tuple[Account, str | None] | None:
    return None


class LoginDictionary:
    def __init__(self, lookup: Lookup, *, box_lookup: BoxLookup = _no_boxes) -> None:
        self._lookup = lookup
        self._box_lookup = box_lookup

    def answer(self, key: str) -> str:
        """The reply to a lookup of dict key `key`."""
        if not key.startswith(PASSDB_PREFIX):
            return NOT_FOUND
        service, separator, login = key.removeprefix(PASSDB_PREFIX).partition("/")
        if not separator:
            return NOT_FOUND
        try:
            account = self._find(service, login)
        except Exception as error:  # the database away: a temporary failure, never "no such user"
            log.warning("login lookup failed: %s", type(error).__name__)
            return failed("login lookup failed")
        if account is None:
            return NOT_FOUND
        account_id, password_hash = account
        fields = {"user": account_id}
        if password_hash:  # without one Dovecot refuses the login ("no password returned")
            fields["password"] = password_hash
        return found(json.dumps(fields, separators=(",", ":")))

    def _find(self, service: str, login: str) -> tuple[str, str | None] | None:
        named = login_name(login)
        if named is None:
            return None
        kind, key = named
        if kind == "address":
            return self._lookup(key)
        box = self._box_lookup(key)
        if box is None or not may_log_in(box[0], service):
            return None
        return box[0].account_id, box[1]

    def respond(self, line: str) -> Reply:
        if not line:
            return None
        command, rest = line[0], line[1:]
        if command == "L":
            # `L<key>`, and from Dovecot 2.3.17 on maybe `\t<user>` after it (empty for the passdb).
            # On the event loop: a thread hop costs more than the lookup, and the mail services' databases
            # bound every lookup in time (service_main.mail_service_database).
            return self.answer(unescape(rest.split("\t", 1)[0]))
        if command == "I":
            return "\n"  # an empty iteration (the passdb is configured not to iterate)
        return None  # HELLO; the passdb never writes

    def protocol(self) -> DictProtocol:
        """A protocol for one connection of Dovecot's (a protocol factory for `loop.create_unix_server`)."""
        return DictProtocol(self.respond)
