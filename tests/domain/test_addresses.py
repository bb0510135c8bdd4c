"""Addresses: idn-email parsing, IDN forms and the uniqueness key."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postwerk.domain.addresses import lookup_key, parse_address, parse_domain
from postwerk.domain.errors import ValidationFailed


@pytest.mark.parametrize(
    ("text", "local", "unicode_domain", "ascii_domain"),
    [
        ("пошта@укр.нет", "пошта", "укр.нет", "xn--j1amh.xn--e1apq"),
        ("Info@Bücher.Example", "Info", "bücher.example", "xn--bcher-kva.example"),
        ("bob+tag@xn--bcher-kva.example", "bob+tag", "bücher.example", "xn--bcher-kva.example"),
        ("straße@faß.de", "straße", "faß.de", "xn--fa-hia.de"),  # non-transitional: ß stays
    ],
)
def test_valid_addresses(text: str, local: str, unicode_domain: str, ascii_domain: str) -> None:
    address = parse_address(text)
    assert address.written == text
    assert address.local_part == local
    assert address.domain.unicode == unicode_domain
    assert address.domain.ascii == ascii_domain


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no-at",
        "a@b",
        "@x.example",
        "a@@x.example",
        "a b@x.example",
        '"q"@x.example',
        "a@[1.2.3.4]",
        "a@-x.example",
        "a@x..example",
        " a@x.example",
        "a\x00@x.example",
        "\ud800@x.example",
        "x" * 65 + "@x.example",
        "a@" + "x" * 64 + ".example",
        "Jo <jo@x.example>",
    ],
)
def test_invalid_addresses(text: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse_address(text, ".address")
    assert raised.value.issues[0].path == ".address"


def test_one_key_for_every_spelling() -> None:
    spellings = ["Straße@Faß.de", "strasse@xn--fa-hia.de", "STRASSE@FASS.DE".replace("FASS", "faß")]
    keys = {parse_address(s).lookup_key for s in spellings}
    assert keys == {"strasse@xn--fa-hia.de"}
    composed = unicodedata.normalize("NFC", "é@x.example")
    decomposed = unicodedata.normalize("NFD", "é@x.example")
    assert parse_address(composed).lookup_key == parse_address(decomposed).lookup_key


def test_a_domain_folds_as_postfix_asks_for_it() -> None:
    """Postfix folds a UTF-8 key in full: the folded U-label, not the A-label, tells two domains apart."""
    straße, strasse = parse_domain("Straße.example"), parse_domain("strasse.example")
    assert straße.ascii != strasse.ascii
    assert straße.folded == strasse.folded == "strasse.example"
    assert parse_domain("ΣΟΦΌΣ.gr").folded == parse_domain("σοφός.gr").folded == "σοφόσ.gr"
    assert parse_domain("пошта.укр").folded == "пошта.укр"
    assert parse_domain("xn--strae-oqa.example").folded == "strasse.example"


@given(st.text(alphabet=st.characters(codec="utf-8", categories=["Ll", "Lu", "Nd"]), min_size=1, max_size=20))
def test_key_is_idempotent_and_case_blind(local: str) -> None:
    key = lookup_key(local, "Example.ORG")
    assert key == lookup_key(key.split("@")[0], "example.org")
    assert key == lookup_key(local.casefold(), "EXAMPLE.org")
    assert key == lookup_key(unicodedata.normalize("NFD", local), "example.org")


@given(st.text(max_size=80))
def test_parsing_never_crashes(text: str) -> None:
    try:
        address = parse_address(text)
    except ValidationFailed:
        return
    assert "@" in address.lookup_key and address.domain.ascii.isascii()


def test_domains() -> None:
    assert parse_domain("XN--BCHER-KVA.example.").unicode == "bücher.example"
    for bad in ("localhost", "a..b", "-a.example", "a" * 64 + ".example", "exa mple.org", ""):
        with pytest.raises(ValidationFailed):
            parse_domain(bad)
