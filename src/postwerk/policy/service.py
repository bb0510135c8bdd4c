"""The policy service: answers Postfix's `check_policy_service` at RCPT time (a recipient whose receiving the
provider disabled: 550 5.2.1; a full mailbox reached by the recipient: 552 5.2.2; a recipient whose forwards
only loop: 550 5.4.6).

Postfix asks it only about the recipients its `room` map (main.cf, migration 0014) does not let through
first: a plain mailbox found by its exact address with room for a message of the size limit is answered
`OK` there, since nothing here could refuse it; tests/mail hold that map to this service's answers.

A recipient the lookup finds hosted (its address, its address without `+extension`, or its domain's
catch-all) and that none of those three refuses is answered `OK`: Postfix's own check of unknown
recipients (`reject_unlisted_recipient`, a query of the recipient maps) comes after this service in main.cf
and is skipped then, so a message to a hosted address costs one lookup at RCPT instead of two. Every other
answer that lets the mail on (`DUNNO`: not found, not a hosted address, an error, the service unreachable)
leaves the recipient to that check, which refuses unknown ones with 550 5.1.1 as before; an `OK` is never
given for a recipient Postfix does not know, since both read the same addresses by the same precedence
(`postwerk.domain.delivery_quota`, held to the SQL maps by tests/mail).

On an internal error (a bug, a database that does not answer in time) the answer is `DUNNO`, not a 451:
the quota is a limit on growth, not a security rule, and Dovecot keeps delivering regardless, so the cost
of `DUNNO` is a mailbox that overshoots by the mail of an outage; a 451 would instead hold every sender's
mail to every hosted address (the check runs for all of them) behind one broken query. When the database
itself is down, Postfix's own lookups of the routes fail first and it answers 451 on its own. Postfix's
`default_action` for an unreachable service is DUNNO too, for the same reason. A recipient whose receiving
is disabled is still refused then, later: its route ends in the error transport (5.2.1), a bounce.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from postwerk.domain.delivery_quota import DISABLED_REPLY, LOOP_REPLY, Found, expand, is_over_quota
from postwerk.domain.text import plain_decimal
from postwerk.policy.protocol import PolicyProtocol, Request

log = logging.getLogger("postwerk.policy")

FULL = "552 5.2.2 Mailbox full"
DUNNO = "DUNNO"
ACCEPTED = "OK"
MAX_SIZE = 2**62  # a SIZE beyond any quota: larger announced sizes are cut to it

# The store's lookup (`store.mail_lookups.find_destinations` on a read connection).
BlockingLookup = Callable[[Sequence[str], Sequence[str]], Found]


def _message_size(text: str) -> int:
    size = plain_decimal(text, 19)
    return 0 if size is None else min(size, MAX_SIZE)


class PolicyService:
    def __init__(self, lookup: BlockingLookup) -> None:
        # The lookup runs on the event loop: a thread hop costs more than it does, and the mail services'
        # databases bound every lookup in time (service_main.mail_service_database).
        self._lookup = lookup

    def decide_blocking(self, request: Request) -> str:
        if request.malformed or request.get("request") != "smtpd_access_policy":
            return DUNNO
        if request.get("protocol_state").upper() != "RCPT":
            return DUNNO
        expansion = expand(request.get("recipient"), self._lookup)
        if expansion.refused:
            log.info("refused at RCPT: receiving is disabled for the recipient")
            return DISABLED_REPLY
        if expansion.is_loop:
            # The routes would bounce it (5.4.6) after acceptance: refused here, the sender learns at once.
            log.info("refused at RCPT: the forwards of the recipient only loop")
            return LOOP_REPLY
        size = _message_size(request.get("size"))
        full = [box for box in expansion.mailboxes.values() if is_over_quota(box, size)]
        if not full:
            return ACCEPTED if expansion.hosted else DUNNO
        log.info("refused at RCPT: mailbox %s is full", ", ".join(box.mailbox_id for box in full))
        return FULL

    def decide(self, request: Request) -> str:
        try:
            return self.decide_blocking(request)
        except Exception as error:  # never crash, never leave Postfix waiting: see the module's note
            log.error("quota check failed (%s: %s): answering DUNNO", type(error).__name__, error)
            return DUNNO

    def protocol(self) -> PolicyProtocol:
        """A connection of Postfix's (for `serve_unix`)."""
        return PolicyProtocol(self.decide)
