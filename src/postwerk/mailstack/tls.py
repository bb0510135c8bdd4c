"""A self-signed certificate for the first start, when the provider gives none."""

from __future__ import annotations

import subprocess
from pathlib import Path

OPENSSL_TIMEOUT = 60.0


def ensure_self_signed(cert: Path, key: Path, hostname: str) -> bool:
    """Make a certificate for `hostname` unless both files exist; True when one was made."""
    if cert.exists() and key.exists():
        return False
    cert.parent.mkdir(parents=True, exist_ok=True)
    key.parent.mkdir(parents=True, exist_ok=True)
    # The openssl CLI rather than a new Python dependency; P-256 keys are made in milliseconds.
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            f"/CN={hostname}",
            "-addext",
            f"subjectAltName=DNS:{hostname}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=OPENSSL_TIMEOUT,
        umask=0o077,  # the key is never readable by others, not even for a moment
    )
    key.chmod(0o600)
    cert.chmod(0o644)
    return True
