"""Sending through submission (SMTP AUTH): who logs in where, and who may send as which envelope sender.

Logins (answered to Dovecot's passdb by `postwerk.logins`, per service):
- a mailbox logs in with its address (any spelling the address rule finds) on every service;
- a delivery box logs in with its `name`, on SMTP submission only (never IMAP or POP3), and only while its
  `authenticationEnabled` holds.
The SASL login name Postfix then knows is the account's id (the passdb's `user`): a mailbox's id or a
delivery box's id, never the login as typed, so no spelling of a login can matter below.

Envelope senders (Postfix's `smtpd_sender_login_maps`, answered by the `sender-owners` socketmap of
`postwerk.mailstack.tables`): the owners of a sender address are the accounts that may send as it:
- the mailbox of the address itself;
- every mailbox among the address's forward targets (a forwarding address that delivers to a mailbox: its
  owner may answer as it); a target lands by the precedence of a recipient (exact, then without its
  `+extension`), never through a catch-all, and forwards are not followed further;
- every delivery box of the project that holds the sender's domain (any address in it, existing or not).
An address is found like a recipient: exactly, else without its `+extension` (`bob+news@` is bob's unless
`bob+news@` exists itself), never through the catch-all. A sender outside the hosted domains has no owner.
Postfix refuses a sender the login does not own with `553 5.7.1`.

`sendingEnabled = false` (a mailbox's, or a delivery box's) refuses sending with `SENDING_DISABLED`, not
logging in: the owner still reads mail, and learns why sending fails. A project whose sending the provider
suspended refuses every account of it with `SENDING_SUSPENDED` (the project's flag, so accounts made later
are covered too).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from postwerk.domain.addresses import envelope_domain, parse_address, without_angle_brackets
from postwerk.domain.delivery_quota import recipient_keys
from postwerk.domain.errors import DomainError

SMTP_SERVICE = "smtp"  # the service name Postfix's Dovecot SASL client sends (Dovecot's %s)
SENDING_DISABLED = "550 5.7.1 sending is disabled for this account"
SENDING_SUSPENDED = "550 5.7.1 sending is suspended for this project by the provider"


@dataclass(frozen=True)
class Account:
    """A login as the sending rules see it."""

    account_id: str
    is_delivery_box: bool
    sending_enabled: bool
    authentication_enabled: bool = True
    # The provider suspended the sending of the account's whole project (`postwerk sending suspend
    # --project`): it covers accounts created later too, so it is the project's flag, read with the account.
    project_sending_suspended: bool = False


MAX_BOX_NAME = 64
LoginName = tuple[Literal["address", "name"], str]


def login_name(login: str) -> LoginName | None:
    """What a login as typed names: a mailbox by its address (`("address", lookup key)`: any spelling of
    it) or, without `@`, a delivery box by its name (`("name", lower case)`: server-made, ASCII); None if
    it can name neither."""
    if "@" in login:
        try:
            return "address", parse_address(login).lookup_key
        except DomainError:
            return None
    name = login.lower()
    if not name or len(name) > MAX_BOX_NAME or not name.isascii() or not name.isprintable():
        return None
    return "name", name


def may_log_in(account: Account, service: str) -> bool:
    """Delivery boxes send only: SMTP submission, and only while their authentication is enabled."""
    if not account.is_delivery_box:
        return True
    return service == SMTP_SERVICE and account.authentication_enabled


def sending_refusal(account: Account | None) -> str | None:
    """The reply that refuses a logged-in account's mail, or None when it may send."""
    if account is None:
        return None  # not an account of ours: the sender check refuses it anyway
    if account.project_sending_suspended:
        return SENDING_SUSPENDED
    if not account.sending_enabled or (account.is_delivery_box and not account.authentication_enabled):
        return SENDING_DISABLED
    return None


@dataclass(frozen=True)
class SenderAddress:
    """A hosted address as the sender rule sees it."""

    key: str
    mailbox_id: str | None  # the address is a mailbox
    forward_keys: tuple[str, ...] = ()  # lookup keys of its forward targets


class SenderLookup(Protocol):
    def addresses(self, keys: Sequence[str]) -> Mapping[str, SenderAddress]:
        """Hosted addresses by lookup key (those that exist)."""
        ...

    def delivery_boxes(self, ascii_domain: str) -> Sequence[str]:
        """Ids of the delivery boxes of the project that holds the domain (none if it is not hosted)."""
        ...


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _first(keys: Sequence[str], found: Mapping[str, SenderAddress]) -> SenderAddress | None:
    for key in keys:
        if key in found:
            return found[key]
    return None


def sender_owners(sender: str, lookup: SenderLookup) -> list[str]:
    """The account ids that may send as envelope sender `sender` (any spelling; `@domain` asks for the
    domain-wide owners, the delivery boxes), in a stable order; empty when nobody may."""
    sender = without_angle_brackets(unicodedata.normalize("NFC", sender.strip()))
    if sender.startswith("@"):
        domain = envelope_domain(sender[1:])
        return _unique(lookup.delivery_boxes(domain)) if domain else []
    keys = recipient_keys(sender)
    if keys is None:
        return []
    owners: list[str] = []
    address = _first(keys.address_keys, lookup.addresses(keys.address_keys))
    if address is not None:
        if address.mailbox_id is not None:
            owners.append(address.mailbox_id)
        targets = [target for key in address.forward_keys if (target := recipient_keys(key)) is not None]
        target_keys = _unique(key for target in targets for key in target.address_keys)
        found = lookup.addresses(target_keys) if target_keys else {}
        for target in targets:
            landed = _first(target.address_keys, found)
            if landed is not None and landed.mailbox_id is not None:
                owners.append(landed.mailbox_id)
    owners += lookup.delivery_boxes(keys.domain)
    return _unique(owners)
