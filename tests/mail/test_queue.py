"""End to end: `postwerk queue list|flush|delete` on the stack's own Postfix queue. Mail from hosted senders,
forwarded out to a recipient the relay host (the test's sink) defers, stays queued: the provider lists it by
sender (any case, either form of an IDN domain), deletes it without a bounce, and retries the rest."""

from __future__ import annotations

import json
import time
import uuid

from postwerk.domain.addresses import parse_address
from tests.mail.conftest import DELIVERY_TIMEOUT, Hosted, Stack
from tests.mail.messages import text_message
from tests.mail.test_provider import postwerk

QUIET_PERIOD = 4.0  # retries are 1-2 s apart in the test stack


def _queued(stack: Stack, *args: str) -> list[dict[str, object]]:
    result = postwerk(stack, "queue", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    items: list[dict[str, object]] = json.loads(result.stdout)
    return items


def _wait_queued(stack: Stack, count: int, *args: str) -> list[dict[str, object]]:
    """Until `queue list ARGS` shows `count` messages, each deferred at least once."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        items = _queued(stack, *args)
        deferred = [item for item in items if item["queue"] == "deferred"]
        if len(items) == count and len(deferred) == count:
            return items
        assert time.monotonic() < deadline, f"{items}\n{stack.log_tail()}"
        time.sleep(0.3)


def test_queue_lists_deletes_and_flushes_by_sender(stack: Stack, hosted: Hosted) -> None:
    tag = uuid.uuid4().hex[:12]
    target = f"held-{tag}@elsewhere.example"
    forwarder = f"out-{tag}@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": [target]})
    idn_sender = f"Versand-{tag}@{hosted.idn_domain}"  # hosted: never rewritten (no SRS)
    other_sender = f"other-{tag}@{hosted.domain}"
    stack.sink.defer(target)
    try:
        with stack.smtp() as client:
            for number in (1, 2):
                sent = text_message(idn_sender, forwarder, f"held {tag} {number}", "Queued.")
                assert client.sendmail(idn_sender, [forwarder], sent, mail_options=["SMTPUTF8"]) == {}
            sent = text_message(other_sender, forwarder, f"kept {tag}", "Queued too.")
            assert client.sendmail(other_sender, [forwarder], sent) == {}

        # By sender: exact, in another case, with the A-label of the domain.
        ascii_form = parse_address(idn_sender).domain.ascii
        held = _wait_queued(stack, 2, "--sender", f"VERSAND-{tag}@{ascii_form}")
        for item in held:
            assert item["sender"] == idn_sender
            (recipient,) = item["recipients"]  # type: ignore[misc]
            assert recipient["address"] == target
            assert "451 4.3.0" in recipient["delayReason"]
        assert _wait_queued(stack, 2, "--sender", idn_sender.lower()) == held
        assert _queued(stack, "--sender", f"Versand-{tag}+x@{hosted.idn_domain}") == []  # exact match
        (kept,) = _wait_queued(stack, 1, "--sender", other_sender)
        assert {str(item["id"]) for item in _queued(stack)} >= {str(item["id"]) for item in [*held, kept]}

        table = postwerk(stack, "queue", "list", "--sender", idn_sender)
        assert table.returncode == 0, table.stderr
        assert all(str(item["id"]) in table.stdout for item in held) and target in table.stdout
        assert str(kept["id"]) not in table.stdout

        # Deleting needs a sender or --all.
        refused = postwerk(stack, "queue", "delete")
        assert refused.returncode == 2 and "--sender" in refused.stderr
        deleted = postwerk(stack, "queue", "delete", "--sender", f"versand-{tag}@{ascii_form}", "--json")
        assert deleted.returncode == 0, deleted.stderr
        assert json.loads(deleted.stdout) == {"deleted": 2, "ids": [item["id"] for item in held]}
        assert _queued(stack, "--sender", idn_sender) == []
        assert [item["id"] for item in _queued(stack, "--sender", other_sender)] == [kept["id"]]

        # The rest is retried at once, and delivered; the deleted mail never is (and bounces to nobody).
        stack.sink.accept(target)
        flushed = postwerk(stack, "queue", "flush", "--sender", other_sender, "--json")
        assert flushed.returncode == 0, flushed.stderr
        assert json.loads(flushed.stdout)["flushed"] in ([kept["id"]], [])  # [] if it was being retried
        stack.sink.wait_for(lambda m: f"kept {tag}".encode() in m.content, log=stack.log_tail)
        time.sleep(QUIET_PERIOD)
        assert not [m for m in stack.sink.messages if f"held {tag}".encode() in m.content]
        assert _queued(stack, "--sender", other_sender) == []
    finally:
        stack.sink.accept(target)


def test_queue_flush_of_everything_and_refusals(stack: Stack) -> None:
    result = postwerk(stack, "queue", "flush", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"flushed": "all"}
    result = postwerk(stack, "queue", "list", "--sender", "not an address")
    assert result.returncode == 1 and "not a mail address" in result.stderr
    result = postwerk(stack, "queue", "list", "--postfix-config", "/nonexistent/postfix", "--json")
    assert result.returncode == 1
    assert json.loads(result.stderr.splitlines()[-1])["error"] == "queue"
    assert _queued(stack, "--sender", "<>") == [] or all(
        item["sender"] == "" for item in _queued(stack, "--sender", "<>")
    )
