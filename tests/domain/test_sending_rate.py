"""The sending rate limit's rules: the sliding hour of per-minute counts, the decision for a message, the
tier of an account, and how a SASL login name is understood."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwerk.domain.rate_limits import RateLimitCatalogue, tier_id
from postwerk.domain.sending_rate import (
    SLOT_SECONDS,
    WINDOW_SLOTS,
    Sender,
    SenderLogin,
    Window,
    decide,
    limit_for,
    over_limit_reply,
    recipient_count,
    sender_login,
    slot_of,
)

T0 = 1_790_000_040.0  # a Unix time on a minute boundary
MINUTE = float(SLOT_SECONDS)


def _send(window: Window, at: float, recipients: int, limit: int) -> tuple[bool, Window]:
    decision = decide(window, recipients, limit, slot_of(at))
    return decision.accepted, decision.window


def test_a_message_within_the_limit_is_counted_and_one_over_it_is_refused_uncounted() -> None:
    window = Window()
    accepted, window = _send(window, T0, 3, 5)
    assert accepted and window.total == 3
    accepted, window = _send(window, T0 + 1, 2, 5)
    assert accepted and window.total == 5
    decision = decide(window, 1, 5, slot_of(T0 + 2))
    assert decision.reply == over_limit_reply(5)
    assert decision.reply.startswith("450 4.7.1 sending rate limit reached: 5 messages per hour")
    assert decision.window.total == 5  # not counted


def test_a_refused_message_leaves_room_for_a_smaller_one() -> None:
    _, window = _send(Window(), T0, 4, 5)
    assert not decide(window, 2, 5, slot_of(T0)).accepted
    assert decide(window, 1, 5, slot_of(T0)).accepted


def test_a_message_larger_than_the_whole_limit_is_refused_for_good() -> None:
    decision = decide(Window(), 6, 5, slot_of(T0))
    assert decision.reply is not None and decision.reply.startswith("550 5.7.1 ")
    assert "6 recipients" in decision.reply and "5 messages per hour" in decision.reply
    assert decide(Window(), 5, 5, slot_of(T0)).accepted


@pytest.mark.parametrize(
    ("sent_at", "checked_at", "still_counts"),
    [
        (T0, T0 + 59 * MINUTE + 59, True),
        (T0, T0 + 60 * MINUTE, True),  # the minute 60 minutes before the current one still counts
        (T0, T0 + 60 * MINUTE + 59, True),
        (T0, T0 + 61 * MINUTE, False),
        (T0 + 59, T0 + 61 * MINUTE, False),  # at most 61 minutes after the message
        (T0 + 59, T0 + 60 * MINUTE + 58, True),  # at least 60 minutes after the message
    ],
)
def test_a_count_leaves_the_window_between_60_and_61_minutes_after(
    sent_at: float, checked_at: float, still_counts: bool
) -> None:
    _, window = _send(Window(), sent_at, 5, 5)
    assert decide(window, 1, 5, slot_of(checked_at)).accepted is not still_counts


def test_counts_of_a_clock_that_runs_ahead_still_count() -> None:
    _, window = _send(Window(), T0 + 5 * MINUTE, 5, 5)  # another mail node, five minutes ahead
    assert not decide(window, 1, 5, slot_of(T0)).accepted
    assert decide(window, 1, 5, slot_of(T0 + 66 * MINUTE)).accepted


def test_the_window_keeps_only_what_counts() -> None:
    window = Window()
    for minute in range(200):
        _, window = _send(window, T0 + minute * MINUTE, 1, 1000)
    assert len(window.counts) == WINDOW_SLOTS + 1
    assert window.total == WINDOW_SLOTS + 1
    assert window.newest_slot == slot_of(T0 + 199 * MINUTE)


def test_encoding_round_trips_and_refuses_anything_else() -> None:
    window = Window(((29_833_333, 3), (29_833_334, 12)))
    assert window.encode() == "29833333:3 29833334:12"
    assert Window.decode(window.encode()) == window
    assert Window.decode("") == Window()
    assert Window.decode("5:1 3:2 5:1 4:0") == Window(((3, 2), (5, 2)))
    for bad in ("x", "1:", ":1", "1:-1", "1:1,2:2", "\u0661:1", "1:1e3", "1" * 19 + ":1"):
        with pytest.raises(ValueError):
            Window.decode(bad)


def _reference_accepts(accepted: list[tuple[int, int]], at_slot: int, recipients: int, limit: int) -> bool:
    counted = sum(n for slot, n in accepted if slot >= at_slot - WINDOW_SLOTS)
    return recipients <= limit and counted + recipients <= limit


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30 * 60), st.integers(1, 8)), min_size=1, max_size=80),
    st.integers(1, 40),
)
def test_no_hour_ever_holds_more_than_the_limit(steps: list[tuple[int, int]], limit: int) -> None:
    """Messages at increasing times (gaps of up to 30 minutes): each decision is the reference model's, and
    no 60-minute span of accepted messages holds more than the limit."""
    window, now = Window(), T0
    accepted: list[tuple[int, int]] = []
    accepted_at: list[tuple[float, int]] = []
    for gap, recipients in steps:
        now += gap
        decision = decide(window, recipients, limit, slot_of(now))
        assert decision.accepted == _reference_accepts(accepted, slot_of(now), recipients, limit)
        if decision.accepted:
            window = decision.window
            accepted.append((slot_of(now), recipients))
            accepted_at.append((now, recipients))
        assert Window.decode(window.encode()) == window
    for start, _ in accepted_at:
        assert sum(n for at, n in accepted_at if start <= at < start + 3600) <= limit


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("1", 1),
        ("25", 25),
        ("0", 1),
        ("", None),
        ("-1", None),
        ("1_0", None),
        ("\u0661", None),
        ("9" * 13, None),
    ],
)
def test_recipient_count(text: str, count: int | None) -> None:
    assert recipient_count(text) == count


def test_logins_name_an_account_by_id_address_or_name() -> None:
    account = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
    assert sender_login(account) == SenderLogin("id", account)
    assert sender_login(account.upper()) == SenderLogin("id", account)
    key = sender_login("ärger@bücher.example")
    assert key is not None and key.kind == "address"
    for spelling in (
        "ÄRGER@BÜCHER.example",
        "ärger@xn--bcher-kva.example",
        "a\u0308rger@bu\u0308cher.example",
    ):
        assert sender_login(spelling) == key, spelling
    assert sender_login("Shop-App7") == SenderLogin("name", "shop-app7")
    for junk in ("", "   ", "not an address@", "@", "x" * 65, "tab\tname", "ünicode"):
        assert sender_login(junk) is None, junk


def test_the_tier_of_a_mailbox_else_the_default() -> None:
    catalogue = RateLimitCatalogue.from_values([100, 500, 1000], 500)
    assert limit_for(Sender("m", tier_id(100)), catalogue) == 100
    assert limit_for(Sender("m", tier_id(1000)), catalogue) == 1000
    assert limit_for(Sender("m", tier_id(42)), catalogue) == 500  # a tier the provider removed
    assert limit_for(Sender("m", None), catalogue) == 500  # a delivery box
