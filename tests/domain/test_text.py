"""Numbers as mail servers send them: plain ASCII digits only."""

from __future__ import annotations

import pytest

from postwerk.domain.text import plain_decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("10240", 10240),
        ("007", 7),
        ("1" * 19, int("1" * 19)),
        ("1" * 20, None),  # more digits than allowed
        ("", None),
        ("-1", None),
        ("+1", None),
        ("1_000", None),
        (" 1", None),
        ("1\n", None),
        ("١٢", None),  # Arabic-Indic digits, which int() would take
        ("²", None),
    ],
)
def test_only_plain_ascii_digits_are_numbers(text: str, expected: int | None) -> None:
    assert plain_decimal(text, 19) == expected
