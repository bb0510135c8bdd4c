"""Password rules and hashing.

Hashes are Argon2id in the form Dovecot's `{ARGON2ID}` scheme verifies, so the one stored string serves the
API, IMAP, POP3 and SMTP submission alike.

Parameters: memory 19 MiB, 2 passes, 1 lane: the first of OWASP's recommended Argon2id settings. Every
IMAP/POP3/SMTP login pays one verify (Dovecot's auth cache re-verifies cached hashes), and one verify here
costs about 23 ms of one core, so a two-core mail node verifies some 80 logins a second: enough for
thousands of mail clients polling every few minutes, while an offline guess still costs 19 MiB and ~23 ms.
Stronger settings (argon2-cffi's default, ~150 ms) would cap a node at about a dozen logins a second.
Old hashes keep working when these change: the parameters are encoded in each hash.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from postwerk.domain.errors import ValidationFailed

SCHEME_PREFIX = "{ARGON2ID}"
MIN_LENGTH = 8
MAX_BYTES = 1024

_hasher = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def check_password_rules(
    password: str, path: str, *, address: str | None = None, local_part: str | None = None
) -> None:
    """Raise ValidationFailed naming the first rule the password breaks."""
    if "\x00" in password:
        raise ValidationFailed.at(path, "password must not contain NUL characters", "pattern")
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationFailed.at(path, "password must be valid Unicode text", "format") from None
    if len(password) < MIN_LENGTH:
        raise ValidationFailed.at(
            path,
            f"password must be at least {MIN_LENGTH} characters long",
            "minLength",
            limit=str(MIN_LENGTH),
        )
    if size > MAX_BYTES:
        raise ValidationFailed.at(
            path, f"password must be at most {MAX_BYTES} bytes long", "maxLength", limit=str(MAX_BYTES)
        )
    folded = password.casefold()
    if address is not None and folded == address.casefold():
        raise ValidationFailed.at(path, "password must not be the mail address itself", "not")
    if local_part is not None and folded == local_part.casefold():
        raise ValidationFailed.at(path, "password must not be the local part of the mail address", "not")


def hash_password(password: str) -> str:
    """Slow by design (see the module docstring): call it off the event loop."""
    return SCHEME_PREFIX + _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    if not stored.startswith(SCHEME_PREFIX):
        return False
    try:
        return _hasher.verify(stored[len(SCHEME_PREFIX) :], password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
