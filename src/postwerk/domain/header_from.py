"""The header `From:` of a message sent through submission: the one address that the sender rule
(`domain.submission.sender_owners`, the same rule as for the envelope sender) and DKIM (the signing domain)
look at, and what makes a header unusable for both.

Receivers show `From:` to the reader and DMARC judges it, so it must be unambiguous: exactly one `From:`
header holding exactly one address, parsed without any defect by the standard library's RFC 5322 parser
(no group, no second address, no route, no text the parser had to guess around; a UTF-8 local part is
fine, RFC 6532), and an address that is a valid `idn-email` (no quoted local part). A display name is
never looked at: only the address counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email import policy
from email.errors import NonASCIILocalPartDefect

from postwerk.domain.addresses import MailAddress, parse_address
from postwerk.domain.errors import ValidationFailed

REFUSED = "553 5.7.1"
NO_FROM = f"{REFUSED} the message has no From: header"
SEVERAL_FROM = f"{REFUSED} the message has more than one From: header"
BAD_FROM = f"{REFUSED} the From: header must hold exactly one plain address (name <local@domain>)"
_FOLD = re.compile(r"\r?\n(?=[ \t])")


class HeaderRefused(Exception):
    """The message cannot be sent as it is; `reply` is the SMTP reply that says why."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def header_from(values: Sequence[str]) -> MailAddress:
    """The address of the message's `From:` header, given the values of every header so named."""
    if not values:
        raise HeaderRefused(NO_FROM)
    if len(values) > 1:
        raise HeaderRefused(SEVERAL_FROM)
    value = _FOLD.sub("", values[0]).strip()
    if "\r" in value or "\n" in value or "\0" in value:
        raise HeaderRefused(BAD_FROM)
    header = policy.SMTPUTF8.header_factory("From", value)
    groups = header.groups
    # A UTF-8 local part is no defect of a message sent with SMTPUTF8 (RFC 6532); anything else is.
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if defects or len(groups) != 1 or groups[0].display_name is not None:
        raise HeaderRefused(BAD_FROM)
    addresses = groups[0].addresses
    if len(addresses) != 1:
        raise HeaderRefused(BAD_FROM)
    try:
        return parse_address(addresses[0].addr_spec, ".from")
    except ValidationFailed:
        raise HeaderRefused(BAD_FROM) from None
