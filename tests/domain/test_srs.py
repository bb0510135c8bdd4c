"""SRS addresses: made for outside senders, reversed only when made by this key, in any case, while fresh."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from postwerk.domain.srs import MAX_AGE_DAYS, SrsKey, is_srs_address

KEY = SrsKey(b"k" * 32)
DAY = 24 * 3600
NOW = 1_800_000_000.0
OURS = "mx.provider.example"


def test_forward_and_reverse() -> None:
    srs = KEY.forward("Alice@Outside.Example", OURS, now=NOW)
    assert srs.startswith("SRS0=") and srs.endswith("=Outside.Example=Alice@" + OURS)
    assert is_srs_address(srs)
    assert KEY.reverse(srs, OURS, now=NOW) == "Alice@Outside.Example"
    # Mail servers and Postfix's lookups fold case: still reverses (the local part then lower case).
    assert KEY.reverse(srs.lower(), OURS, now=NOW) == "alice@outside.example"
    assert KEY.reverse(srs.upper(), OURS.upper(), now=NOW) == "ALICE@OUTSIDE.EXAMPLE"


def test_forged_foreign_and_expired_addresses_do_not_reverse() -> None:
    srs = KEY.forward("alice@outside.example", OURS, now=NOW)
    assert SrsKey(b"x" * 32).reverse(srs, OURS, now=NOW) is None
    assert KEY.reverse(srs.replace("=alice@", "=mallory@"), OURS, now=NOW) is None
    assert KEY.reverse(srs.replace(OURS, "mx.other.example"), OURS, now=NOW) is None
    assert KEY.reverse(srs, OURS, now=NOW + MAX_AGE_DAYS * DAY) is not None
    assert KEY.reverse(srs, OURS, now=NOW + (MAX_AGE_DAYS + 1) * DAY) is None
    for other in ("alice@outside.example", f"srs0=x@{OURS}", f"SRS0=abcd=ab=nodomain@{OURS}"):
        assert KEY.reverse(other, OURS, now=NOW) is None


@given(
    local=st.from_regex(r"[A-Za-z0-9._+=-]{1,30}", fullmatch=True),
    domain=st.from_regex(r"[a-z0-9-]{1,20}\.[a-z]{2,6}", fullmatch=True),
    day=st.integers(min_value=0, max_value=100_000),
)
def test_every_sender_round_trips(local: str, domain: str, day: int) -> None:
    now = day * DAY + 1.0
    srs = KEY.forward(f"{local}@{domain}", OURS, now=now)
    assert KEY.reverse(srs, OURS, now=now + DAY) == f"{local}@{domain}"
    # An SRS address of someone else's, forwarded again, wraps and unwraps.
    assert KEY.reverse(KEY.forward(srs, "mx.next.example", now=now), "mx.next.example", now=now) == srs
