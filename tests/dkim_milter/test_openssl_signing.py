"""The RSA step of dkimpy's signatures runs in OpenSSL (postwerk.dkim.signing): the same signatures,
checked by dkimpy's own verifier, for each hash dkimpy signs with."""

from __future__ import annotations

import base64

import dkim
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
