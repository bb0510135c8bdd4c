"""DKIM signatures (RFC 6376) with dkimpy: relaxed/relaxed, rsa-sha256, the domain's active key.

Signed: the headers that make up what a reader sees and what a reply goes to (From, To, Cc, Subject, Date,
Message-ID, Reply-To, the MIME and List-* headers, ...), each as often as it occurs; From, To, Cc, Subject,
Date, Message-ID and Reply-To once more (oversigned), so nobody can add a second one later without breaking
the signature. Relaxed canonicalization for both parts: the signature survives the rewrapping of headers and
trailing white space that relays commonly do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dkim
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


def _crlf(text: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message_bytes(headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes:
    """The message as the receiver will see it: headers as `Name: value` lines, CRLF line ends."""
    lines = b"".join(name + b": " + _crlf(value.lstrip(b" ")) + b"\r\n" for name, value in headers)
    return lines + b"\r\n" + _crlf(body)


def signed_headers(names: Sequence[bytes]) -> list[bytes]:
    present = [name.lower() for name in names if name.lower().decode("ascii", "replace") in SIGNED]
    return present + [name.encode("ascii") for name in OVERSIGNED]


def signature(headers: Sequence[tuple[bytes, bytes]], body: bytes, key: SigningKey) -> bytes:
    """The DKIM-Signature header's value for the message, folded with LF (as a milter hands it to Postfix,
    which writes each line as a line of the header), without the name."""
    message = message_bytes(headers, body)
    field: bytes = dkim.sign(
        message,
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
