"""The RSA step of dkimpy's signatures runs in OpenSSL (postwerk.dkim.signing): the same signatures,
checked by dkimpy's own verifier, for each hash dkimpy signs with."""

from __future__ import annotations

import base64
import random
import re

import dkim
import dkim.canonicalization
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postwerk.dkim import signing

MESSAGE = (
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n"
    b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x@example.org>\r\n\r\nbody\r\n"
)


def test_dkimpy_signs_through_openssl() -> None:
    assert dkim.RSASSA_PKCS1_v1_5_sign is signing.openssl_rsa_sign


@pytest.mark.parametrize("algorithm", [b"rsa-sha256", b"rsa-sha1"])
def test_signatures_verify_with_dkimpy(algorithm: bytes) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    for _ in range(2):  # the second time with the key built before
        header = dkim.sign(MESSAGE, b"sel", b"example.org", pem, signature_algorithm=algorithm)
        assert dkim.verify(header + MESSAGE, dnsfunc=lambda name, timeout=5: record)
        assert not dkim.verify(
            header + MESSAGE.replace(b"body", b"b0dy"), dnsfunc=lambda name, timeout=5: record
        )


def _original_compress_whitespace(content: bytes) -> bytes:
    return re.sub(b"[\t ]+", b" ", content)  # dkimpy's own


def _original_strip_trailing_whitespace(content: bytes) -> bytes:
    return re.sub(b"[\t ]+\r\n", b"\r\n", content)  # dkimpy's own


def test_relaxed_white_space_is_compressed_as_dkimpy_does() -> None:
    assert dkim.canonicalization.compress_whitespace is signing.compress_whitespace
    assert dkim.canonicalization.strip_trailing_whitespace is signing.strip_trailing_whitespace
    pieces = [b"a", b"bc", b" ", b"  ", b"\t", b" \t ", b"\t\t", b"\r\n", b"x y", b"\r"]
    chooser = random.Random(7)
    samples = [b"", b" ", b"\t", b"a b\tc  d \t e\r\n  \r\n"]
    samples += [b"".join(chooser.choice(pieces) for _ in range(chooser.randint(1, 40))) for _ in range(2000)]
    for sample in samples:
        assert signing.compress_whitespace(sample) == _original_compress_whitespace(sample), sample
        stripped = _original_strip_trailing_whitespace(sample)
        assert signing.strip_trailing_whitespace(sample) == stripped, sample


HEADERS = [
    (b"From", b" A <a@example.org>"),
    (b"To", b"b@example.net,\n\tc@example.net"),  # folded, as a milter hands it over (LF)
    (b"Subject", b"hi  there "),
    (b"X-Empty", b""),
]


def test_messages_are_handed_to_dkimpy_as_its_parser_reads_them() -> None:
    for body in (b"", b"body\n", b"line\r\nline 2\nend", b"\r\n\r\n", b"a\rb\n"):
        assert signing._parsed(HEADERS, body) == dkim.rfc822_parse(signing.message_bytes(HEADERS, body))
    # A continuation line without white space in front: left to dkimpy's parser.
    assert signing._parsed([(b"To", b"b@example.net\nX: y")], b"body") is None


def test_a_key_is_parsed_once() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert dkim.parse_pem_private_key(pem) is dkim.parse_pem_private_key(pem)
