"""Mail addresses: parsing as `idn-email`, IDN normalisation, and the one key that makes them unique.

The lookup key is the single identity of an address on the installation: the NFC-normalised, case-folded
(and NFC again) local part, `@`, and the lowercase A-label domain (IDNA 2008 with UTS 46 mapping,
non-transitional, so `faß.de` stays `xn--fa-hia.de`). The address itself is kept as the customer wrote it.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import idna
from email_validator import EmailNotValidError, validate_email

from postwerk.domain.errors import ValidationFailed
from postwerk.domain.text import require_safe_text

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_OCTETS = 64


@dataclass(frozen=True)
class DomainName:
    unicode: str
    ascii: str

    @property
    def folded(self) -> str:
        """The U-label as Postfix asks for it: with SMTPUTF8 on, Postfix case-folds every lookup key in full
        (ICU's default folding, as `str.casefold`, with no normalisation after it), so `straße.example` is
        asked for as `strasse.example`, and a final sigma as a plain one. IDNA keeps ß and the final sigma
        (`xn--strae-oqa.example`), so two domains can fold alike: to Postfix's maps they are one name, and
        Postwerk hosts only one of such a pair (migration 0015)."""
        return self.unicode.casefold()


@dataclass(frozen=True)
class MailAddress:
    written: str
    local_part: str
    domain: DomainName

    @property
    def lookup_key(self) -> str:
        return lookup_key(self.local_part, self.domain.ascii)

    @property
    def ascii_route(self) -> str:
        """The address with its domain as A-label: what an ASCII-only mail server can be handed."""
        return f"{self.local_part}@{self.domain.ascii}"


def lookup_key(local_part: str, ascii_domain: str) -> str:
    # NFC, then casefold; then NFC once more, because case folding can decompose (`ΐ` and `Ϊ́` fold to
    # the same letters in different forms): every spelling a reader sees as equal gets the same key.
    folded = unicodedata.normalize("NFC", local_part).casefold()
    return f"{unicodedata.normalize('NFC', folded)}@{ascii_domain.lower()}"


def envelope_domain(domain: str) -> str | None:
    """The A-label form of a domain as an SMTP envelope writes it (either form, any case, a trailing dot),
    or None when IDNA refuses it. Lenient where `parse_domain` is strict: mail servers ask about whatever
    clients send, and an answer of "no such domain" is all a bad one needs."""
    domain = domain.rstrip(".")
    if not domain:
        return None
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return None


def without_angle_brackets(address: str) -> str:
    """An envelope address as written in SMTP (`<a@b>`) or bare."""
    return address[1:-1] if address.startswith("<") and address.endswith(">") else address


def parse_domain(text: str, path: str = ".domain") -> DomainName:
    """A hosted domain from Unicode or A-label input, in both forms."""
    require_safe_text(text, path, max_length=253)
    candidate = text.strip().rstrip(".")
    try:
        ascii_form = idna.encode(candidate, uts46=True, transitional=False).decode("ascii").lower()
        unicode_form = idna.decode(ascii_form)
    except (idna.IDNAError, UnicodeError) as error:
        raise ValidationFailed.at(
            path, f"{text!r} is not a valid domain name: {error}", "format", format="hostname"
        ) from None
    if "." not in ascii_form or len(ascii_form) > 253:
        raise ValidationFailed.at(
            path, f"{text!r} is not a fully qualified domain name", "format", format="hostname"
        )
    return DomainName(unicode=unicode_form, ascii=ascii_form)


# The mail services parse the same few addresses over and over (a sender's login, envelope and From: in one
# submission; email_validator's checks cost ~0.1 ms each): answers are immutable, so recent ones are kept.
# Failures are not kept (an exception is raised anew).
@functools.lru_cache(maxsize=4096)
def parse_address(text: str, path: str = ".address") -> MailAddress:
    """Validate an `idn-email` (UTF-8 local parts and internationalised domains are valid)."""
    require_safe_text(text, path, max_length=1024)
    if text != text.strip():
        raise ValidationFailed.at(
            path, "must not start or end with white space", "format", format="idn-email"
        )
    try:
        validated = validate_email(
            text,
            allow_smtputf8=True,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
            check_deliverability=False,
        )
    except EmailNotValidError as error:
        raise ValidationFailed.at(
            path, f'must match format "idn-email": {error}', "format", format="idn-email"
        ) from None
    local_part = text.rsplit("@", 1)[0]
    if len(local_part.encode()) > MAX_LOCAL_PART_OCTETS:
        raise ValidationFailed.at(
            path,
            f"the part before @ must not be longer than {MAX_LOCAL_PART_OCTETS} octets (RFC 5321)",
            "maxLength",
            limit=str(MAX_LOCAL_PART_OCTETS),
        )
    domain = parse_domain(validated.domain, path)
    if len(local_part.encode()) + 1 + len(domain.ascii) > MAX_ADDRESS_LENGTH:
        raise ValidationFailed.at(
            path,
            f"must not be longer than {MAX_ADDRESS_LENGTH} octets",
            "maxLength",
            limit=str(MAX_ADDRESS_LENGTH),
        )
    return MailAddress(written=text, local_part=local_part, domain=domain)


def search_text(address: MailAddress, mailbox_name: str | None) -> str:
    """What a partial-match search over an address looks at: the address as written, its Unicode and
    A-label forms and the mailbox name, case-folded so one index serves case-blind searches."""
    forms = (
        address.written,
        f"{address.local_part}@{address.domain.unicode}",
        address.lookup_key,
        mailbox_name or "",
    )
    return unicodedata.normalize("NFC", " ".join(forms).casefold())


def search_pattern(term: str) -> str:
    """A search term folded the way `search_text` is."""
    return unicodedata.normalize("NFC", term.casefold())
