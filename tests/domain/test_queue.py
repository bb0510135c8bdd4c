"""Which queued messages a `postwerk queue --sender` filter selects: exact addresses, in any case, with
either form of an internationalised domain; `<>` for the null sender."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postwerk.domain.errors import ValidationFailed
from postwerk.domain.queue import QueuedMessage, QueuedRecipient, by_sender, sender_filter, sender_key
from postwerk.mailstack.queue import parse_postqueue_json


def _queued(queue_id: str, sender: str) -> QueuedMessage:
    return QueuedMessage(queue_id, "deferred", datetime(2026, 11, 26, tzinfo=UTC), 100, sender, ())


@pytest.mark.parametrize(
    ("written", "queued"),
    [
        ("info@bücher.example", "info@xn--bcher-kva.example"),
        ("INFO@XN--BCHER-KVA.EXAMPLE", "Info@Bücher.example"),
        ("<Info@Bücher.example.>", "info@bücher.example"),
        ("Ärger@bücher.example", "ärger@xn--bcher-kva.example"),
        ("a\u0308rger@bücher.example", "ärger@bücher.example"),  # decomposed (NFD)
        ("<>", ""),
        ("", "<>"),
    ],
)
def test_the_same_sender_in_every_spelling(written: str, queued: str) -> None:
    assert sender_filter(written) == sender_key(queued)


@pytest.mark.parametrize(
    ("written", "queued"),
    [
        ("info@bücher.example", "info+news@bücher.example"),  # no +extension stripping
        ("info@bücher.example", "info@mail.bücher.example"),
        ("info@bücher.example", ""),
        ("<>", "info@bücher.example"),
    ],
)
def test_other_senders_do_not_match(written: str, queued: str) -> None:
    assert sender_filter(written) != sender_key(queued)


def test_a_filter_must_be_an_address() -> None:
    with pytest.raises(ValidationFailed):
        sender_filter("bücher.example")


def test_by_sender_selects_and_keeps_the_queue_order() -> None:
    messages = [
        _queued("A1", "Info@Bücher.example"),
        _queued("B2", "other@bücher.example"),
        _queued("C3", "info@xn--bcher-kva.example"),
        _queued("D4", ""),
    ]
    assert [m.queue_id for m in by_sender(messages, sender_filter("INFO@bücher.example"))] == ["A1", "C3"]
    assert [m.queue_id for m in by_sender(messages, sender_filter("<>"))] == ["D4"]
    assert by_sender(messages, None) == messages


def test_postqueue_json_lines() -> None:
    output = (
        '{"queue_name": "deferred", "queue_id": "3F1B2C0A1", "arrival_time": 1795687200,'
        ' "message_size": 512, "forced_expire": false, "sender": "info@bücher.example",'
        ' "recipients": [{"address": "a@elsewhere.example", "delay_reason": "451 4.3.0 later"}]}\n'
        '{"queue_name": "active", "queue_id": "4A2B", "arrival_time": 1795687201, "message_size": 1,'
        ' "sender": "", "recipients": [{"address": "b@elsewhere.example"}]}\n'
    )
    first, second = parse_postqueue_json(output)
    assert first == QueuedMessage(
        "3F1B2C0A1",
        "deferred",
        datetime.fromtimestamp(1795687200, UTC),
        512,
        "info@bücher.example",
        (QueuedRecipient("a@elsewhere.example", "451 4.3.0 later"),),
    )
    assert second.sender == "" and second.recipients == (QueuedRecipient("b@elsewhere.example"),)
    assert parse_postqueue_json("") == []
