"""The Sender Rewriting Scheme for forwarded mail.

Mail that Postwerk forwards to a domain it does not host leaves with an envelope sender in Postwerk's own
domain (the mail hostname), so the target's SPF check sees Postwerk's servers send for their own domain:

    SRS0=HHHH=TT=example.com=alice@mx.provider.example

`TT` is the day (base32, wraps every 1024 days) and `HHHH` a keyed hash of the day, the original domain and
local part, so only addresses Postwerk made reverse: a bounce to one goes back to `alice@example.com`, and
nobody can use the scheme to relay through Postwerk.

Mail servers on the way may change the case of a local part (and Postfix folds every lookup key), so the
hash and the day use base32 over case-folded input: any case of a valid address still reverses. The original
local part's case is lost in the round trip; local parts are case-insensitive in practice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

SRS_PREFIX = "srs0="
_DAY = 24 * 3600
_DAY_LETTERS = "abcdefghijklmnopqrstuvwxyz234567"
_DAYS_WRAP = len(_DAY_LETTERS) ** 2
HASH_LENGTH = 4
# A bounce usually comes back within hours; mail systems retry for up to five days.
MAX_AGE_DAYS = 21
_SRS0 = re.compile(r"^srs0=([a-z2-7]{4})=([a-z2-7]{2})=([^=]+)=(.+)@([^@]+)$", re.IGNORECASE)


def _today(now: float | None) -> int:
    return int((time.time() if now is None else now) // _DAY) % _DAYS_WRAP


def _day_stamp(day: int) -> str:
    return _DAY_LETTERS[day // len(_DAY_LETTERS)] + _DAY_LETTERS[day % len(_DAY_LETTERS)]


def _day_of(stamp: str) -> int:
    return _DAY_LETTERS.index(stamp[0]) * len(_DAY_LETTERS) + _DAY_LETTERS.index(stamp[1])


@dataclass(frozen=True)
class SrsKey:
    secret: bytes

    def _hash(self, stamp: str, domain: str, local: str) -> str:
        message = f"{stamp}={domain}={local}".casefold().encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii")[:HASH_LENGTH].lower()

    def forward(self, sender: str, srs_domain: str, *, now: float | None = None) -> str:
        """The SRS form of `sender` (local@domain) in `srs_domain`."""
        local, _, domain = sender.rpartition("@")
        stamp = _day_stamp(_today(now))
        return f"SRS0={self._hash(stamp, domain, local)}={stamp}={domain}={local}@{srs_domain}"

    def reverse(self, address: str, srs_domain: str, *, now: float | None = None) -> str | None:
        """The original sender of an SRS address Postwerk made, or None (not one, forged, or too old)."""
        match = _SRS0.match(address)
        if match is None:
            return None
        given_hash, stamp, domain, local, in_domain = match.groups()
        if in_domain.casefold() != srs_domain.casefold():
            return None
        if not hmac.compare_digest(given_hash.lower(), self._hash(stamp.lower(), domain, local)):
            return None
        age = (_today(now) - _day_of(stamp.lower())) % _DAYS_WRAP
        if age > MAX_AGE_DAYS:
            return None
        return f"{local}@{domain}"


def is_srs_address(address: str) -> bool:
    return address[: len(SRS_PREFIX)].casefold() == SRS_PREFIX
