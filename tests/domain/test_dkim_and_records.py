"""DKIM keys (selectors, key pairs, records), the DNS records of a hosted domain, and the header From: rule
of the submission milter."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_private_key

from postwerk.domain.addresses import parse_domain
from postwerk.domain.dkim import (
    RSA_BITS,
    KeyStatus,
    Rotation,
    is_selector,
    new_key_pair,
    new_selector,
    plan_rotation,
    record_name,
    record_text,
)
from postwerk.domain.dns_records import TXT_CHUNK, ListedKey, PublicHost, records_for, spf_text
from postwerk.domain.errors import Conflict
from postwerk.domain.header_from import BAD_FROM, NO_FROM, SEVERAL_FROM, HeaderRefused, header_from

NOVEMBER = datetime(2026, 11, 26, tzinfo=UTC)


def test_selectors_name_the_month_and_are_never_reused() -> None:
    assert new_selector(NOVEMBER, ()) == "pw202611"
    assert new_selector(NOVEMBER, {"pw202611"}) == "pw202611-2"
    assert new_selector(NOVEMBER, {"pw202611", "pw202611-2", "pw202610"}) == "pw202611-3"
    assert new_selector(datetime(2027, 1, 1, tzinfo=UTC), {"pw202611"}) == "pw202701"
    assert all(is_selector(s) for s in ("pw202611", "pw202611-2", "pw202611-17"))
    assert not any(is_selector(s) for s in ("pw2026", "default", "pw202611-", "../x", "pw202611-2x"))


def test_a_key_pair_is_rsa_2048_and_its_private_half_never_shows() -> None:
    pair = new_key_pair()
    public = load_der_public_key(base64.b64decode(pair.public_key))
    private = load_pem_private_key(pair.private_key_pem.encode(), password=None)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == RSA_BITS
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.public_key().public_numbers() == public.public_numbers()
    assert "PRIVATE" not in repr(pair) and pair.private_key_pem[40:80] not in repr(pair)
    assert new_key_pair().public_key != pair.public_key
    assert record_text("rsa", pair.public_key) == f"v=DKIM1; k=rsa; p={pair.public_key}"
    assert record_name("pw202611", "xn--bcher-kva.example") == "pw202611._domainkey.xn--bcher-kva.example"


def _by_purpose(records: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    grouped: dict[str, list[dict[str, object]]] = {}
    for record in records:
        grouped.setdefault(str(record["purpose"]), []).append(record)
    return grouped


def test_records_of_an_internationalised_domain_use_a_labels() -> None:
    domain = parse_domain("Bücher.Example")
    keys = [
        ListedKey("pw202611-2", "rsa", "A" * 392, "active"),
        ListedKey("pw202610", "rsa", "B" * 392, "retired"),
    ]
    host = PublicHost("mx.provider.example")
    records = [record.as_dict() for record in records_for(domain, host, keys)]
    assert all(str(r["name"]).isascii() and str(r["zone"]).isascii() for r in records)
    grouped = _by_purpose(records)
    (mx,) = grouped["mx"]
    assert (mx["name"], mx["value"], mx["priority"]) == ("xn--bcher-kva.example", "mx.provider.example", 10)
    assert mx["zone"] == "xn--bcher-kva.example. 3600 IN MX 10 mx.provider.example."
    assert [r["value"] for r in grouped["spf"]] == ["v=spf1 mx -all"]
    assert [r["name"] for r in grouped["dkim"]] == [
        "pw202611-2._domainkey.xn--bcher-kva.example",
        "pw202610._domainkey.xn--bcher-kva.example",
    ]
    assert "note" not in grouped["dkim"][0] and "signs no more" in str(grouped["dkim"][1]["note"])
    # A TXT text longer than 255 characters is split into strings of at most 255 in the zone line.
    zone = str(grouped["dkim"][0]["zone"])
    strings = zone.split(" IN TXT ", 1)[1].split('" "')
    assert len(strings) == 2 and all(len(s.strip('"')) <= TXT_CHUNK for s in strings)
    assert "".join(s.strip('"') for s in strings) == grouped["dkim"][0]["value"]
    assert [r["name"] for r in grouped["dmarc"]] == ["_dmarc.xn--bcher-kva.example"]
    assert {(r["name"], r["port"]) for r in grouped["srv"]} == {
        ("_submissions._tcp.xn--bcher-kva.example", 465),
        ("_submission._tcp.xn--bcher-kva.example", 587),
        ("_imaps._tcp.xn--bcher-kva.example", 993),
        ("_imap._tcp.xn--bcher-kva.example", 143),
        ("_pop3s._tcp.xn--bcher-kva.example", 995),
        ("_pop3._tcp.xn--bcher-kva.example", 110),
    }
    assert "_imaps._tcp.xn--bcher-kva.example. 3600 IN SRV 0 1 993 mx.provider.example." in {
        r["zone"] for r in grouped["srv"]
    }
    assert {(r["type"], r["name"], r["value"]) for r in grouped["autoconfig"]} == {
        ("CNAME", "autoconfig.xn--bcher-kva.example", "mx.provider.example"),
        ("CNAME", "autodiscover.xn--bcher-kva.example", "mx.provider.example"),
    }


def test_spf_names_the_public_addresses_when_known() -> None:
    assert spf_text(PublicHost("mx.example")) == "v=spf1 mx -all"
    assert spf_text(PublicHost("mx.example", ipv4="192.0.2.10")) == "v=spf1 ip4:192.0.2.10 -all"
    assert (
        spf_text(PublicHost("mx.example", ipv4="192.0.2.10", ipv6="2001:db8::25"))
        == "v=spf1 ip4:192.0.2.10 ip6:2001:db8::25 -all"
    )


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("anna@example.org", "anna@example.org"),
        ("Anna Example <Anna@Example.org>", "Anna@example.org"),
        ('"Example, Anna" <anna@example.org>', "anna@example.org"),
        ("=?utf-8?q?M=C3=BCller?=\r\n <m@bücher.example>", "m@xn--bcher-kva.example"),
        ("Ärger <ärger@пошта.укр>", "ärger@xn--80a1acn3a.xn--j1amh"),
        ("anna@evil.example (anna@good.example)", "anna@evil.example"),  # a comment is no address
        ('"boss@good.example" <x@evil.example>', "x@evil.example"),  # nor is a display name
    ],
)
def test_the_address_of_a_from_header(value: str, address: str) -> None:
    assert header_from([value]).ascii_route == address


@pytest.mark.parametrize(
    "value",
    [
        "<a@good.example>@evil.example",
        "a@good.example <x@evil.example>",
        "a@b.example, c@d.example",
        "team: a@b.example;",
        "undisclosed-recipients:;",
        '"a b"@example.org',
        "Foo <@route.example:a@good.example>",
        "nobody",
        "",
        "<a@good.example",
        "a@good.example\r\nBcc: x@evil.example",
        "a@good.example\x00b@evil.example",
    ],
)
def test_ambiguous_from_headers_are_refused(value: str) -> None:
    with pytest.raises(HeaderRefused) as refused:
        header_from([value])
    assert refused.value.reply == BAD_FROM


def test_exactly_one_from_header() -> None:
    with pytest.raises(HeaderRefused) as none:
        header_from([])
    with pytest.raises(HeaderRefused) as two:
        header_from(["a@example.org", "a@example.org"])
    assert (none.value.reply, two.value.reply) == (NO_FROM, SEVERAL_FROM)
    assert all(r.startswith("553 5.7.1 ") for r in (NO_FROM, SEVERAL_FROM, BAD_FROM))


def test_rotation_retires_the_active_key_and_activates_the_prepared_one() -> None:
    active = ("a", "pw202610", KeyStatus.ACTIVE)
    retired = ("r", "pw202601", KeyStatus.RETIRED)
    prepared = ("n", "pw202611", KeyStatus.NEXT)
    assert plan_rotation("x.example", [active, retired], prepare=False) == Rotation(
        retire=("a",), new_key=KeyStatus.ACTIVE
    )
    activated = plan_rotation("x.example", [active, prepared], prepare=False)
    assert activated == Rotation(retire=("a",), activate="n")
    # Prepared: listed only, the active key keeps signing; a domain without one gets an active key at once.
    assert plan_rotation("x.example", [active, retired], prepare=True) == Rotation(new_key=KeyStatus.NEXT)
    assert plan_rotation("x.example", [retired], prepare=True) == Rotation(new_key=KeyStatus.ACTIVE)
    with pytest.raises(Conflict, match=r"x\.example has a prepared key already \(pw202611\)"):
        plan_rotation("x.example", [active, prepared], prepare=True)
