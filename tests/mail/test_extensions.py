"""End to end: mail to an address with a `+extension` that the address itself does not have (`bob+tag@`
finds `bob@`). Hosted mailboxes get it; forward targets outside the installation get the address exactly as
the customer configured it, never with the extension of the incoming recipient added (the remote may not
know subaddressing at all, or file it elsewhere): `propagate_unmatched_extensions` in main.cf."""

from __future__ import annotations

import uuid

from tests.mail.conftest import Hosted, Stack, split_trace, wait_for_messages
from tests.mail.messages import text_message
from tests.mail.sink import Received

PASSWORD = "subaddresses go where the address goes"
SENDER = "alice@outside.example"


def _tagged(tag: str) -> object:
    return lambda message: tag.encode() in message.content


def _send(stack: Stack, recipient: str) -> tuple[str, bytes]:
    tag = uuid.uuid4().hex
    sent = text_message(SENDER, recipient, f"extension {tag}", "For a subaddress.", message_id=f"{tag}@t")
    with stack.smtp() as client:
        assert client.sendmail(SENDER, [recipient], sent) == {}
    return tag, sent


def _relayed(stack: Stack, tag: str) -> Received:
    (relayed,) = stack.sink.wait_for(_tagged(tag), log=stack.log_tail)  # type: ignore[arg-type]
    return relayed


def test_a_forwarding_address_with_an_extension_reaches_its_targets_as_configured(
    stack: Stack, hosted: Hosted
) -> None:
    box = f"inbox@{hosted.domain}"
    hosted.create_mailbox(box, PASSWORD)
    forwarder = f"fwd@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": [box, "Friend@elsewhere.example"]})

    tag, sent = _send(stack, f"fwd+tag@{hosted.domain}")
    (stored,) = wait_for_messages(stack, box, PASSWORD, 1)
    split_trace(stored, sent)
    assert _relayed(stack, tag).recipients == ("Friend@elsewhere.example",)


def test_a_forward_target_with_an_extension_of_its_own_keeps_it(stack: Stack, hosted: Hosted) -> None:
    forwarder = f"list@{hosted.domain}"
    hosted.create_address({"address": forwarder, "forwardAddresses": ["friend+lists@elsewhere.example"]})
    tag, _ = _send(stack, f"list+news@{hosted.domain}")
    assert _relayed(stack, tag).recipients == ("friend+lists@elsewhere.example",)


def test_a_mailbox_that_forwards_keeps_its_copy_of_mail_to_its_subaddress(
    stack: Stack, hosted: Hosted
) -> None:
    address = f"box@{hosted.domain}"
    hosted.create_address(
        {
            "address": address,
            "forwardAddresses": ["copy@elsewhere.example"],
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    tag, sent = _send(stack, f"box+tag@{hosted.domain}")
    (stored,) = wait_for_messages(stack, address, PASSWORD, 1)
    split_trace(stored, sent)
    assert _relayed(stack, tag).recipients == ("copy@elsewhere.example",)
