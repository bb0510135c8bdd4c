"""The sending rules of submission: who logs in on which service, whose sending is refused, and who may
send as which envelope sender (`postwerk.domain.submission`)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

import pytest

from postwerk.domain.submission import (
    SENDING_DISABLED,
    Account,
    SenderAddress,
    may_log_in,
    sender_owners,
    sending_refusal,
)

D = "shop.example"
IDN_ASCII = "xn--bcher-kva.example"  # bücher.example


class FakeLookup:
    def __init__(self, addresses: Mapping[str, SenderAddress], boxes: Mapping[str, Sequence[str]]) -> None:
        self._addresses = addresses
        self._boxes = boxes
        self.asked: list[tuple[str, ...]] = []

    def addresses(self, keys: Sequence[str]) -> Mapping[str, SenderAddress]:
        self.asked.append(tuple(keys))
        return {key: self._addresses[key] for key in keys if key in self._addresses}

    def delivery_boxes(self, ascii_domain: str) -> Sequence[str]:
        return self._boxes.get(ascii_domain, ())


def _address(key: str, mailbox_id: str | None = None, *forwards: str) -> SenderAddress:
    return SenderAddress(key, mailbox_id, forwards)


LOOKUP_DATA = {
    f"info@{D}": _address(f"info@{D}", "mb-info"),
    f"bob@{D}": _address(f"bob@{D}", "mb-bob"),
    f"bob+news@{D}": _address(f"bob+news@{D}", "mb-news"),
    # forwarding addresses: to info (exact), to bob by his +extension, to a forwarding address, outside
    f"sales@{D}": _address(
        f"sales@{D}", None, f"info@{D}", f"bob+sales@{D}", f"team@{D}", "x@elsewhere.example"
    ),
    f"team@{D}": _address(f"team@{D}", None, f"bob@{D}"),
    # a mailbox that forwards a copy to another one: both may send as it
    f"keeper@{D}": _address(f"keeper@{D}", "mb-keeper", f"info@{D}"),
    f"ärger@{IDN_ASCII}": _address(f"ärger@{IDN_ASCII}", "mb-idn"),
}
BOXES = {D: ("db-1", "db-2"), IDN_ASCII: ("db-3",)}


@pytest.mark.parametrize(
    ("sender", "owners"),
    [
        (f"info@{D}", ["mb-info", "db-1", "db-2"]),
        (f"INFO@{D.upper()}", ["mb-info", "db-1", "db-2"]),
        (f"<info@{D}>", ["mb-info", "db-1", "db-2"]),
        (f"info+anything@{D}", ["mb-info", "db-1", "db-2"]),  # an own +extension
        (f"bob+news@{D}", ["mb-news", "db-1", "db-2"]),  # exists itself: not bob's
        (f"sales@{D}", ["mb-info", "mb-bob", "db-1", "db-2"]),  # forwards are not followed further
        (f"team@{D}", ["mb-bob", "db-1", "db-2"]),
        (f"keeper@{D}", ["mb-keeper", "mb-info", "db-1", "db-2"]),
        (f"noreply@{D}", ["db-1", "db-2"]),  # no such address: the project's delivery boxes alone
        (f"@{D}", ["db-1", "db-2"]),  # Postfix's last lookup: the domain
        ("ÄRGER@bücher.example", ["mb-idn", "db-3"]),
        (f"ärger@{IDN_ASCII.upper()}", ["mb-idn", "db-3"]),
        (unicodedata.normalize("NFD", "Ärger@bücher.example"), ["mb-idn", "db-3"]),
        ("info@elsewhere.example", []),  # not hosted: nobody
        ("info", []),
        ("", []),
        ("@", []),
    ],
)
def test_sender_owners(sender: str, owners: list[str]) -> None:
    assert sender_owners(sender, FakeLookup(LOOKUP_DATA, BOXES)) == owners


def test_a_catch_all_owns_nothing_it_did_not_receive_by_name() -> None:
    # The catch-all mailbox receives unknown@, but does not own it: only the delivery boxes may send as it.
    data = {f"all@{D}": _address(f"all@{D}", "mb-all")}
    assert sender_owners(f"unknown@{D}", FakeLookup(data, BOXES)) == ["db-1", "db-2"]


def test_one_lookup_for_an_address_that_does_not_forward() -> None:
    lookup = FakeLookup(LOOKUP_DATA, BOXES)
    sender_owners(f"info@{D}", lookup)
    assert lookup.asked == [(f"info@{D}",)]


def test_delivery_boxes_log_in_on_smtp_only_and_while_authentication_is_enabled() -> None:
    mailbox = Account("m", is_delivery_box=False, sending_enabled=True)
    box = Account("b", is_delivery_box=True, sending_enabled=True)
    locked = Account("l", is_delivery_box=True, sending_enabled=True, authentication_enabled=False)
    for service in ("imap", "pop3", "smtp"):
        assert may_log_in(mailbox, service)
        assert may_log_in(box, service) is (service == "smtp")
        assert not may_log_in(locked, service)


def test_sending_disabled_is_refused_with_its_own_reply() -> None:
    assert sending_refusal(Account("m", is_delivery_box=False, sending_enabled=True)) is None
    assert sending_refusal(Account("b", is_delivery_box=True, sending_enabled=True)) is None
    assert sending_refusal(None) is None
    for account in (
        Account("m", is_delivery_box=False, sending_enabled=False),
        Account("b", is_delivery_box=True, sending_enabled=False),
        Account("l", is_delivery_box=True, sending_enabled=True, authentication_enabled=False),
    ):
        assert sending_refusal(account) == SENDING_DISABLED
    assert SENDING_DISABLED.startswith("550 5.7.1 ")
