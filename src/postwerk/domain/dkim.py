"""DKIM keys of hosted domains: key pairs, selector names, the states of a key and its DNS record.

Every hosted domain has one **active** key: the submission milter (`postwerk.dkim`) signs with it. A key
pair is made when the domain is added (`postwerk domain add`); a domain from before DKIM gets its key the
first time its DNS records are read (`postwerk domain records`, `GET /v2/projects/{id}/mail-domains`), which
is where the customer learns what to publish: before its record is published, a key is of no use.

Selectors are `pw<yyyymm>` of the month the key was made (`pw202611`); a second key of the same domain in
the same month gets `pw202611-2`, then `-3`, ... A selector is never reused for another key of the domain, so
a record a receiver has cached never meets a key it does not belong to.

Rotation (`postwerk domain dkim rotate DOMAIN`): a new key pair with a new selector becomes the active key,
and the key that signed until then becomes **retired**: it signs no more, but stays listed among the records
(messages signed with it may still be in queues and mailboxes) until the provider removes it
(`postwerk domain dkim remove DOMAIN SELECTOR`). With `--prepare` the new key is only **next**: listed, so
its record can be published, while the current key keeps signing; the next `rotate` activates it. That is the
procedure without a single unverifiable signature: `rotate --prepare`, publish the new record, wait until
DNS serves it (its TTL), `rotate`, and a week later `remove` the old selector and its record.

RSA 2048 only, not also Ed25519 (RFC 8463): most receiving systems verify no Ed25519 signature yet, so every
message needs the RSA signature anyway, and a second one would give the customer a second record to publish
and the provider a second key to rotate, for no receiver that counts today. `algorithm` is stored with every
key, so Ed25519 can become a second active key per domain later without changing the table.

The private key is a secret: it is kept in the database (every mail node reads it from there), never
logged, never shown by a command, never returned by the API.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postwerk.domain.errors import Conflict

RSA_BITS = 2048
ALGORITHM = "rsa"  # the k= tag of the record; the signature is rsa-sha256
SELECTOR_PREFIX = "pw"
_SELECTOR = re.compile(r"^pw[0-9]{6}(?:-[0-9]{1,4})?$")


class KeyStatus(StrEnum):
    NEXT = "next"  # listed (publish its record), does not sign yet
    ACTIVE = "active"  # signs; one per domain
    RETIRED = "retired"  # signs no more, still listed until removed


@dataclass(frozen=True)
class KeyPair:
    algorithm: str
    public_key: str  # base64 of the DER SubjectPublicKeyInfo: the record's p= value
    private_key_pem: str = field(repr=False)  # PKCS#8 PEM; a secret

    def __repr__(self) -> str:  # never a private key in a log line or a traceback
        return f"KeyPair(algorithm={self.algorithm!r}, public_key={self.public_key[:16]!r}...)"


def new_key_pair() -> KeyPair:
    """A new RSA key pair (about 40 ms of one core)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(ALGORITHM, base64.b64encode(public).decode("ascii"), pem)


def new_selector(made_at: datetime, taken: Collection[str]) -> str:
    """`pw<yyyymm>` of `made_at`, or with `-2`, `-3`... when the domain had a key of that name already."""
    base = f"{SELECTOR_PREFIX}{made_at.year:04d}{made_at.month:02d}"
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


@dataclass(frozen=True)
class Rotation:
    """What a rotation does to a domain's keys (by key id)."""

    retire: tuple[str, ...] = ()  # the active keys, which sign no more
    activate: str | None = None  # the prepared key, which signs from now on
    new_key: KeyStatus | None = None  # a key pair to make, with this status; None: none


def plan_rotation(domain: str, keys: Collection[tuple[str, str, KeyStatus]], *, prepare: bool) -> Rotation:
    """The rotation of `domain`'s keys ((id, selector, status) each; see the module's note):
    - `rotate`: the prepared key becomes active if there is one, else a new key does; the active key
      retires;
    - `rotate --prepare`: a new key is listed as next while the active key keeps signing (a domain without
      an active key gets an active one at once); refused (Conflict) when a key is prepared already."""
    active = tuple(key_id for key_id, _, status in keys if status is KeyStatus.ACTIVE)
    prepared = [(key_id, selector) for key_id, selector, status in keys if status is KeyStatus.NEXT]
    if prepare:
        if prepared:
            raise Conflict(
                f"{domain} has a prepared key already ({prepared[0][1]}): publish its record, then run"
                " `rotate` without --prepare to make it sign"
            )
        return Rotation(new_key=KeyStatus.NEXT if active else KeyStatus.ACTIVE)
    if prepared:
        return Rotation(retire=active, activate=prepared[0][0])
    return Rotation(retire=active, new_key=KeyStatus.ACTIVE)


def is_selector(text: str) -> bool:
    """A selector of Postwerk's naming (what `remove` accepts)."""
    return _SELECTOR.match(text) is not None


def record_name(selector: str, ascii_domain: str) -> str:
    return f"{selector}._domainkey.{ascii_domain}"


def record_text(algorithm: str, public_key: str) -> str:
    """The TXT record's text (RFC 6376 3.6.1)."""
    return f"v=DKIM1; k={algorithm}; p={public_key}"
