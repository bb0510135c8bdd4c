"""The quota rule at RCPT time, on a table of hosted addresses: expansion like the routes (exact, subaddress,
catch-all, forwards), full when usage reaches the quota or an announced size does not fit, -1 unlimited."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postwerk.domain.delivery_quota import (
    MAX_LEVELS,
    Destination,
    Found,
    Mailbox,
    accepted_at_any_size,
    expand,
    full_mailboxes,
    is_over_quota,
    reached_mailboxes,
    recipient_keys,
)


def _box(name: str, quota: int, usage: int) -> Mailbox:
    return Mailbox(f"id-{name}", quota, usage)


# A hosted world: example.org with a catch-all mailbox, forwards, a loop; пример.рф with a UTF-8 mailbox.
FULL = _box("full", 1000, 1000)
ROOMY = _box("roomy", 1000, 10)
UNLIMITED = _box("unlimited", -1, 10**15)
CATCHER = _box("catcher", 1000, 2000)
UTF8 = _box("utf8", 100, 100)
ADDRESSES = {
    "full@example.org": Destination("full@example.org", FULL),
    "roomy@example.org": Destination("roomy@example.org", ROOMY),
    "unlimited@example.org": Destination("unlimited@example.org", UNLIMITED),
    "bob+tag@example.org": Destination("bob+tag@example.org", ROOMY),
    "team@example.org": Destination(
        "team@example.org", None, ("roomy@example.org", "full@example.org", "x@elsewhere.example")
    ),
    "keeper@example.org": Destination("keeper@example.org", ROOMY, ("full+news@example.org",)),
    "outside@example.org": Destination("outside@example.org", None, ("someone@elsewhere.example",)),
    "lists@example.org": Destination("lists@example.org", None, ("friend+lists@elsewhere.example",)),
    "loop-a@example.org": Destination("loop-a@example.org", None, ("loop-b@example.org",)),
    "loop-b@example.org": Destination("loop-b@example.org", None, ("loop-a@example.org",)),
    "to-catch@example.org": Destination("to-catch@example.org", None, ("nobody@example.org",)),
    "to-disabled@example.org": Destination("to-disabled@example.org", None, ("disabled@example.org",)),
    "disabled@example.org": Destination("disabled@example.org", FULL, receiving_disabled=True),
    "пошта@xn--e1afmkfd.xn--p1ai": Destination("пошта@xn--e1afmkfd.xn--p1ai", UTF8),
    "strasse@example.org": Destination("strasse@example.org", FULL),  # keys are case-folded: ß is ss
}
CATCH_ALLS = {"example.org": Destination("catch@example.org", CATCHER)}


class Store:
    """The store's lookup over the table above; records every call (the policy's cost is its calls)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []

    def __call__(self, keys: Sequence[str], domains: Sequence[str]) -> Found:
        self.calls.append((list(keys), list(domains)))
        return Found(
            {key: ADDRESSES[key] for key in keys if key in ADDRESSES},
            {domain: CATCH_ALLS[domain] for domain in domains if domain in CATCH_ALLS},
        )


@pytest.mark.parametrize(
    ("recipient", "full"),
    [
        ("full@example.org", ["id-full"]),
        ("FULL@Example.ORG", ["id-full"]),  # case-blind, like Postfix's lookups
        ("<full@example.org>", ["id-full"]),
        ("full+news@example.org", ["id-full"]),  # subaddress
        ("roomy@example.org", []),
        ("unlimited@example.org", []),  # -1: unlimited, whatever the usage
        ("bob+tag@example.org", []),  # an exact address wins over bob@ and the catch-all
        ("team@example.org", ["id-full"]),  # a forward reaches a full mailbox: refused
        ("keeper@example.org", ["id-full"]),  # keeps a copy and forwards to a full subaddress
        ("outside@example.org", []),  # forwards out only
        ("nobody@example.org", ["id-catcher"]),  # the catch-all's mailbox is full
        ("nobody+x@example.org", ["id-catcher"]),
        ("to-catch@example.org", ["id-catcher"]),  # a forward into the catch-all
        ("loop-a@example.org", []),  # loops end
        ("to-disabled@example.org", []),  # refused by its own route, not by the quota
        ("пошта@пример.рф", ["id-utf8"]),
        ("ПОШТА@пример.рф", ["id-utf8"]),
        ("пошта@xn--e1afmkfd.xn--p1ai", ["id-utf8"]),  # A-label domain
        ("Straße@example.org", ["id-full"]),  # folded like the store's keys
        ("x@elsewhere.example", []),
        ("", []),
        ("no-at-sign", []),
        ("@example.org", []),
        ("a@", []),
        ("a@-bad-.", []),
        ("\udcff@example.org", ["id-catcher"]),  # an odd local part is still the catch-all's
        ("a" * 100_000 + "@example.org", []),
    ],
)
def test_full_mailboxes(recipient: str, full: list[str]) -> None:
    assert [box.mailbox_id for box in full_mailboxes(recipient, Store())] == full


def test_a_plain_recipient_costs_one_lookup_and_each_forward_level_one_more() -> None:
    store = Store()
    full_mailboxes("full+news@example.org", store)
    assert store.calls == [(["full+news@example.org", "full@example.org"], ["example.org"])]
    store = Store()
    full_mailboxes("keeper@example.org", store)
    assert len(store.calls) == 2


@pytest.mark.parametrize(
    ("recipient", "loop", "mailboxes", "disabled", "outside"),
    [
        ("loop-a@example.org", True, [], [], []),
        ("LOOP-B+x@example.org", True, [], [], []),
        ("team@example.org", False, ["id-roomy", "id-full"], [], ["x@elsewhere.example"]),
        ("to-disabled@example.org", False, [], ["disabled@example.org"], []),
        ("to-catch@example.org", False, ["id-catcher"], [], []),
        ("outside@example.org", False, [], [], ["someone@elsewhere.example"]),
        # An unmatched +extension of the recipient is not passed on: targets get what was configured.
        ("team+tag@example.org", False, ["id-roomy", "id-full"], [], ["x@elsewhere.example"]),
        ("lists+news@example.org", False, [], [], ["friend+lists@elsewhere.example"]),
        ("someone@elsewhere.example", False, [], [], []),  # not hosted: no loop either
    ],
)
def test_expand_gives_every_final_destination_and_finds_loops(
    recipient: str, loop: bool, mailboxes: list[str], disabled: list[str], outside: list[str]
) -> None:
    expansion = expand(recipient, Store())
    assert expansion.is_loop == loop
    assert list(expansion.mailboxes) == mailboxes
    assert expansion.disabled == disabled
    assert expansion.outside == outside


@pytest.mark.parametrize(
    ("recipient", "refused"),
    [
        ("disabled@example.org", True),
        ("DISABLED+tag@example.org", True),  # the address's own route, by the recipient's precedence
        ("to-disabled@example.org", False),  # reaches a disabled address: that route bounces, not RCPT
        ("roomy@example.org", False),
        ("nobody@example.org", False),  # the catch-all, which takes mail
    ],
)
def test_a_recipient_whose_own_address_refuses_mail_is_refused(recipient: str, refused: bool) -> None:
    assert expand(recipient, Store()).refused == refused


def test_deep_forward_chains_stop() -> None:
    chain = {
        f"c{i}@example.org": Destination(f"c{i}@example.org", None, (f"c{i + 1}@example.org",))
        for i in range(MAX_LEVELS * 2)
    }

    def lookup(keys: Sequence[str], domains: Sequence[str]) -> Found:
        return Found({key: chain[key] for key in keys if key in chain})

    assert reached_mailboxes("c0@example.org", lookup) == []
    # Cut short is not a loop: the routes, which follow it to the end, may deliver it.
    assert not expand("c0@example.org", lookup).is_loop


@pytest.mark.parametrize(
    ("quota", "usage", "size", "over"),
    [
        (1000, 999, 0, False),
        (1000, 1000, 0, True),  # usage reaching the quota is full
        (1000, 1001, 0, True),
        (1000, 500, 500, False),  # an announced size that just fits
        (1000, 500, 501, True),  # one that does not
        (-1, 10**18, 10**9, False),
        (0, 0, 0, True),
    ],
)
def test_is_over_quota(quota: int, usage: int, size: int, over: bool) -> None:
    assert is_over_quota(Mailbox("m", quota, usage), size) is over


@pytest.mark.parametrize(
    ("recipient", "exact", "without_extension", "domain"),
    [
        ("Bob+Tag@Example.org", "bob+tag@example.org", "bob@example.org", "example.org"),
        ("bob+@example.org", "bob+@example.org", "bob@example.org", "example.org"),
        ("+bob@example.org", "+bob@example.org", None, "example.org"),  # a leading + does not split
        ("a+b+c@example.org", "a+b+c@example.org", "a@example.org", "example.org"),
        ("пошта@ПРИМЕР.рф", "пошта@xn--e1afmkfd.xn--p1ai", None, "xn--e1afmkfd.xn--p1ai"),
        ("x@example.org.", "x@example.org", None, "example.org"),
    ],
)
def test_recipient_keys(recipient: str, exact: str, without_extension: str | None, domain: str) -> None:
    keys = recipient_keys(recipient)
    assert keys is not None
    assert (keys.exact, keys.without_extension, keys.domain) == (exact, without_extension, domain)


@given(st.text(max_size=300))
def test_any_text_is_answered_without_an_error(recipient: str) -> None:
    full_mailboxes(recipient, Store())


def test_only_a_plain_mailbox_with_room_for_the_largest_message_is_accepted_at_any_size() -> None:
    limit = 1000
    roomy = Mailbox("id", quota_bytes=5000, usage_bytes=4000)
    assert accepted_at_any_size(Destination("a@x.example", roomy), limit)
    assert accepted_at_any_size(Destination("a@x.example", UNLIMITED), limit)
    assert not accepted_at_any_size(Destination("a@x.example", Mailbox("id", 4999, 4000)), limit)
    assert not accepted_at_any_size(Destination("a@x.example", roomy, forwards=("b@y.example",)), limit)
    assert not accepted_at_any_size(Destination("a@x.example", roomy, receiving_disabled=True), limit)
    assert not accepted_at_any_size(Destination("a@x.example", None, forwards=("b@y.example",)), limit)
