"""Text that is safe to store and to hand to the mail servers."""

from __future__ import annotations

import unicodedata

from postwerk.domain.errors import ValidationFailed

# C0 controls other than tab/newline, DEL, and the C1 block have no place in any field a person types.
_FORBIDDEN_CATEGORIES = frozenset({"Cs"})


def unsafe_character(text: str, *, allow_newlines: bool = False) -> str | None:
    """The first character that no stored text may hold (NUL, lone surrogates, controls), or None."""
    for char in text:
        if char in "\t" or (allow_newlines and char in "\r\n"):
            continue
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            return char
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return char
    return None


def require_safe_text(text: str, path: str, *, allow_newlines: bool = False, max_length: int = 10_000) -> str:
    bad = unsafe_character(text, allow_newlines=allow_newlines)
    if bad is not None:
        raise ValidationFailed.at(
            path,
            f"must not contain the control character U+{ord(bad):04X}",
            "pattern",
            character=f"U+{ord(bad):04X}",
        )
    if len(text) > max_length:
        raise ValidationFailed.at(
            path, f"must NOT have more than {max_length} characters", "maxLength", limit=str(max_length)
        )
    return text


def plain_decimal(text: str, max_digits: int) -> int | None:
    """The value of `text` if it is plain ASCII decimal digits, at most `max_digits` of them; else None.
    Numbers that mail servers send (sizes, counts) are read with this: Python's int() would also take signs,
    underscores, white space and other scripts' digits."""
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
