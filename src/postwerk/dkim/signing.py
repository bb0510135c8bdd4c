"""DKIM signatures (RFC 6376) with dkimpy: relaxed/relaxed, rsa-sha256, the domain's active key.

Signed: the headers that make up what a reader sees and what a reply goes to (From, To, Cc, Subject, Date,
Message-ID, Reply-To, the MIME and List-* headers, ...), each as often as it occurs; From, To, Cc, Subject,
Date, Message-ID and Reply-To once more (oversigned), so nobody can add a second one later without breaking
the signature. Relaxed canonicalization for both parts: the signature survives the rewrapping of headers and
trailing white space that relays commonly do.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

import dkim
import dkim.canonicalization
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from postwerk.store.dkim_keys import SigningKey

SIGNED = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-message-id",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
)
OVERSIGNED = ("from", "to", "cc", "subject", "date", "message-id", "reply-to")
HEADER_NAME = b"DKIM-Signature"


# dkimpy does the RSA step of a signature in pure Python (two 1024-bit modular powers: ~5.5 ms of the ~5.8 ms
# a small message costs); the `cryptography` package (OpenSSL) does the same in ~0.25 ms. dkimpy looks the
# step up as a module global when it signs, so it is replaced there, for the hashes OpenSSL is asked to
# sign; anything else still goes to dkimpy's own. tests/dkim_milter checks the signatures with dkimpy.
_PURE_PYTHON_SIGN: Callable[[Any, dict[str, int]], bytes] = dkim.RSASSA_PKCS1_v1_5_sign
_HASHES: dict[str, hashes.HashAlgorithm] = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}
_OPENSSL_KEYS: dict[int, rsa.RSAPrivateKey] = {}  # by modulus: a key is built from its numbers once
_MAX_KEYS = 1024


def _openssl_key(key: dict[str, int]) -> rsa.RSAPrivateKey:
    found = _OPENSSL_KEYS.get(key["modulus"])
    if found is None:
        if len(_OPENSSL_KEYS) >= _MAX_KEYS:
            _OPENSSL_KEYS.clear()
        public = rsa.RSAPublicNumbers(key["publicExponent"], key["modulus"])
        found = _OPENSSL_KEYS[key["modulus"]] = rsa.RSAPrivateNumbers(
            p=key["prime1"],
            q=key["prime2"],
            d=key["privateExponent"],
            dmp1=key["exponent1"],
            dmq1=key["exponent2"],
            iqmp=key["coefficient"],
            public_numbers=public,
        ).private_key()
    return found


def openssl_rsa_sign(digest: Any, key: dict[str, int]) -> bytes:
    """dkimpy's `RSASSA_PKCS1_v1_5_sign(hash object, parsed private key)`, by OpenSSL."""
    algorithm = _HASHES.get(getattr(digest, "name", ""))
    if algorithm is None:
        return _PURE_PYTHON_SIGN(digest, key)
    return _openssl_key(key).sign(digest.digest(), padding.PKCS1v15(), utils.Prehashed(algorithm))


dkim.RSASSA_PKCS1_v1_5_sign = openssl_rsa_sign

# Two more of dkimpy's steps cost more than the RSA step now does (a profile of the milter under
# bench/smtp_submission.py): relaxed canonicalization's regular expressions over the body (~0.3 ms for 10 KB
# of text: every single space was replaced by a space), and the domain's PEM key parsed again for every
# signature (ASN.1 in Python, ~0.2 ms). Both are replaced where dkimpy looks them up, by equivalents: runs of
# white space that stay as they are (one space) are left alone, and each pattern starts with a literal
# character, which the regular expression engine scans for quickly; a key is parsed once.
_RUNS_TO_COMPRESS = re.compile(rb"\t[\t ]*| [\t ]+")
_TRAILING_WHITE_SPACE = re.compile(rb"[\t ]+\r\n")


def compress_whitespace(content: bytes) -> bytes:
    """dkimpy's `compress_whitespace`: every run of spaces and tabs to one space."""
    return _RUNS_TO_COMPRESS.sub(b" ", content)


def strip_trailing_whitespace(content: bytes) -> bytes:
    """dkimpy's `strip_trailing_whitespace`: no spaces or tabs at the end of a line."""
    if b" \r\n" not in content and b"\t\r\n" not in content:
        return content
    return _TRAILING_WHITE_SPACE.sub(b"\r\n", content)


dkim.canonicalization.compress_whitespace = compress_whitespace
dkim.canonicalization.strip_trailing_whitespace = strip_trailing_whitespace
dkim.parse_pem_private_key = functools.lru_cache(maxsize=_MAX_KEYS)(dkim.parse_pem_private_key)


def _crlf(text: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message_bytes(headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes:
    """The message as the receiver will see it: headers as `Name: value` lines, CRLF line ends."""
    lines = b"".join(name + b": " + _crlf(value.lstrip(b" ")) + b"\r\n" for name, value in headers)
    return lines + b"\r\n" + _crlf(body)


def signed_headers(names: Sequence[bytes]) -> list[bytes]:
    present = [name.lower() for name in names if name.lower().decode("ascii", "replace") in SIGNED]
    return present + [name.encode("ascii") for name in OVERSIGNED]


def _parsed(headers: Sequence[tuple[bytes, bytes]], body: bytes) -> tuple[list[list[bytes]], bytes] | None:
    """What dkimpy's `rfc822_parse` makes of `message_bytes(headers, body)` (headers as [name, value with its
    CRLF], the body with CRLF line ends), without splitting the body into lines and joining them again; None
    for a header that parser would read otherwise (a continuation line without leading white space)."""
    parsed = []
    for name, value in headers:
        text = _crlf(value.lstrip(b" "))
        if b"\r\n" in text and any(line[:1] not in (b" ", b"\t") for line in text.split(b"\r\n")[1:]):
            return None
        parsed.append([name, b" " + text + b"\r\n"])
    return parsed, _crlf(body)


def signature(headers: Sequence[tuple[bytes, bytes]], body: bytes, key: SigningKey) -> bytes:
    """The DKIM-Signature header's value for the message, folded with LF (as a milter hands it to Postfix,
    which writes each line as a line of the header), without the name."""
    signer = dkim.DKIM(signature_algorithm=b"rsa-sha256")
    parsed = _parsed(headers, body)
    if parsed is None:
        signer.set_message(message_bytes(headers, body))
    else:
        signer.headers, signer.body = parsed
    field: bytes = signer.sign(
        key.selector.encode("ascii"),
        key.domain.encode("ascii"),
        key.private_key_pem.encode("ascii"),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=signed_headers([name for name, _ in headers]),
    )
    name, _, value = field.partition(b":")
    if name != HEADER_NAME:
        raise ValueError("dkimpy returned no DKIM-Signature")
    return value.strip().replace(b"\r\n", b"\n")
