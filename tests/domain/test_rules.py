"""Passwords, quotas, forwarding targets, sender rules, rate-limit tiers and tokens."""

from __future__ import annotations

import pytest

from postwerk.domain.addresses import parse_address
from postwerk.domain.errors import Forbidden, ValidationFailed
from postwerk.domain.forwarding import parse_forward_targets
from postwerk.domain.mailboxes import (
    AutoResponder,
    SpamProtection,
    check_autoresponder,
    check_spam_protection,
)
from postwerk.domain.names import is_project_reference, new_delivery_box_name, new_project_short_id
from postwerk.domain.passwords import check_password_rules, hash_password, verify_password
from postwerk.domain.quotas import check_quota
from postwerk.domain.rate_limits import RateLimitCatalogue, tier_id
from postwerk.domain.sender_rules import normalise_entries
from postwerk.domain.tokens import TokenScope, new_token, token_digest


def test_password_hash_is_dovecot_argon2id() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "wrong horse battery")
    assert not verify_password("{PLAIN}x", "x")


@pytest.mark.parametrize(
    ("password", "keyword"),
    [
        ("short", "minLength"),
        ("x" * 1025, "maxLength"),
        ("ü" * 600, "maxLength"),
        ("bob@x.example", "not"),
        ("BOB@X.EXAMPLE", "not"),
        ("bobbobbob", "not"),
        ("pass\x00word", "pattern"),
        ("\ud800" * 9, "format"),
    ],
)
def test_password_rules(password: str, keyword: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        check_password_rules(password, ".password", address="bob@x.example", local_part="bobbobbob")
    assert raised.value.issues[0].type == keyword


def test_quota() -> None:
    assert check_quota(-1, ".q") == -1
    assert check_quota(209_715_200, ".q") == 209_715_200
    for bad in (0, -2, 209_715_199, 2**63):
        with pytest.raises(ValidationFailed):
            check_quota(bad, ".q")


def test_forward_targets() -> None:
    source = parse_address("me@x.example")
    assert [t.written for t in parse_forward_targets(["a@y.example"], source, required=True)] == [
        "a@y.example"
    ]
    with pytest.raises(ValidationFailed) as raised:
        parse_forward_targets(["a@y.example", "A@Y.EXAMPLE", "ME@x.example", "bad"], source, required=True)
    assert [issue.path for issue in raised.value.issues] == [
        ".forwardAddresses[3]",
        ".forwardAddresses[1]",
        ".forwardAddresses[2]",
    ] or len(raised.value.issues) == 3
    with pytest.raises(ValidationFailed):
        parse_forward_targets([], source, required=True)
    assert parse_forward_targets([], source, required=False) == []


def test_sender_rules() -> None:
    assert normalise_entries(
        ["*@Spam.Example", "x@пример.рф", "x@*.example", "*@spam.example"], ".blacklist"
    ) == ["*@spam.example", "x@xn--e1afmkfd.xn--p1ai", "x@*.example"]
    for bad in ("пошта@x.example", "x", "x@y", "x y@z.example", "x@.example"):
        with pytest.raises(ValidationFailed):
            normalise_entries([bad], ".blacklist")


def test_mailbox_settings() -> None:
    with pytest.raises(ValidationFailed):
        check_spam_protection(SpamProtection(True, "spam", 11, False), ".spamProtection")
    with pytest.raises(ValidationFailed):
        check_autoresponder(AutoResponder(active=True, message="  "), ".autoResponder")
    assert check_autoresponder(AutoResponder(active=False), ".autoResponder").active is False


def test_rate_limit_tiers_are_stable() -> None:
    catalogue = RateLimitCatalogue.from_values([500, 100, 1000], 500)
    assert [tier.recipients_per_hour for tier in catalogue.tiers] == [100, 500, 1000]
    assert catalogue.default.id == tier_id(500) == RateLimitCatalogue.from_values([500], 500).default.id
    with pytest.raises(ValueError):
        RateLimitCatalogue.from_values([100], 500)


def test_tokens_and_names() -> None:
    token = new_token()
    assert len(token) > 40 and token_digest(token) != token and len(token_digest(token)) == 64
    scope = TokenScope("t", is_admin=False, project_id="p", read_only=True)
    assert scope.may_see("p") and not scope.may_see("q")
    with pytest.raises(Forbidden):
        scope.require_write()
    assert is_project_reference(new_project_short_id())
    assert is_project_reference("0b15641e-26e2-4e56-9b83-96a995c8bf05")
    assert not is_project_reference("p-ABCDEF") and not is_project_reference("x\x00")
    assert "@" not in new_delivery_box_name()
