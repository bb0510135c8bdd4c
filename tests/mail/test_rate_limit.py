"""End to end: the sending rate limits on the submission services (`postwerk.ratelimit`). A mailbox at the
smallest tier sends a message to as many recipients as the tier allows in an hour, then one more message is
refused at the end of DATA with 450 4.7.1 (and not sent); the limit holds across a crash and restart of the
service; and with the service unreachable, Postfix answers 451 4.3.0 (fail closed)."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import time
import uuid

import pytest

from postwerk.domain.sending_rate import SERVICE_UNAVAILABLE, over_limit_reply
from postwerk.mailstack.layout import POSTFIX
from postwerk.service import mail_addresses
from tests.mail.conftest import Hosted, Stack, submission_client
from tests.mail.messages import text_message

PASSWORD = "rate limit secret 1"
RESTART_TIMEOUT = 30.0


def _logged_in(stack: Stack, login: str) -> smtplib.SMTP:
    return submission_client(stack, login, PASSWORD)


def _refusal(client: smtplib.SMTP, sender: str, recipients: list[str], tag: str) -> tuple[int, str] | None:
    """None when the message was accepted; else the refusal at the end of DATA."""
    try:
        refused = client.sendmail(sender, recipients, text_message(sender, recipients[0], tag, "Hello."))
    except smtplib.SMTPDataError as error:
        client.rset()
        return error.smtp_code, error.smtp_error.decode()
    assert refused == {}
    return None


def _smallest_tier(hosted: Hosted) -> tuple[str, int]:
    response = hosted.api.get("/v2/mail-rate-limits")
    assert response.status_code == 200, response.text
    smallest = min(response.json(), key=lambda tier: tier["rateLimit"])
    return str(smallest["id"]), int(smallest["rateLimit"])


def _restart_and_wait(stack: Stack) -> None:
    supervisor = stack.mail.supervisor
    assert supervisor is not None
    before = supervisor.pid("ratelimit")
    assert before is not None
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + RESTART_TIMEOUT
    while supervisor.pid("ratelimit") in {None, before}:
        assert time.monotonic() < deadline, "the rate-limit service was not restarted"
        time.sleep(0.05)
    # A new process is not yet a listening one: on a slow machine Python takes a second or more to start,
    # and Postfix meanwhile answers 451 4.3.0 (seen in CI).
    stack.mail.wait_for_services(deadline)


def test_sending_over_the_rate_limit_is_deferred_and_not_sent(stack: Stack, hosted: Hosted) -> None:
    sender = f"busy@{hosted.domain}"
    mailbox_id = hosted.create_mailbox(sender, PASSWORD)
    # The smallest tier, as the customer asks for it and the provider grants it (`rate-limit approve`).
    tier, limit = _smallest_tier(hosted)
    response = hosted.api.post(
        f"/v2/mail-addresses/{mailbox_id}/actions/request-rate-limit-change", json={"rateLimitId": tier}
    )
    assert response.status_code == 204, response.text
    assert mail_addresses.approve_rate_limit_change(stack.context, mailbox_id) == tier

    tag = uuid.uuid4().hex
    everyone = [f"reader{n}-{tag}@elsewhere.example" for n in range(limit)]
    late = f"late-{tag}@elsewhere.example"
    with _logged_in(stack, sender) as client:
        assert _refusal(client, sender, everyone, f"{tag} first") is None
        code, reply = _refusal(client, sender, [late], f"{tag} late") or (250, "")
        assert code == 450, (code, reply, stack.log_tail())
        # Postfix puts its own words in front: "4.7.1 <END-OF-MESSAGE>: End-of-data rejected: sending ..."
        assert reply.startswith("4.7.1 ") and over_limit_reply(limit).removeprefix("450 4.7.1 ") in reply

    # Counted in the database: a crashed service is restarted and still knows.
    _restart_and_wait(stack)
    with _logged_in(stack, sender.upper()) as client:
        code, reply = _refusal(client, sender, [late], f"{tag} later") or (250, "")
        assert (code, reply.split(" ", 1)[0]) == (450, "4.7.1"), (code, reply)

    # Every recipient of the first message got it (Postfix may split them over several deliveries); the
    # refused message never left.
    deadline = time.monotonic() + 30
    while True:
        arrived = [m for m in stack.sink.messages if f"{tag} first".encode() in m.content]
        if sum(len(m.recipients) for m in arrived) >= limit or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(r for m in arrived for r in m.recipients) == sorted(everyone), stack.log_tail()
    assert not [m for m in stack.sink.messages if late in m.recipients]


def test_an_unreachable_service_fails_closed(stack: Stack, hosted: Hosted) -> None:
    """Postfix answers its default_action, 451 4.3.0, when it cannot reach the service; mail flows again as
    soon as it can."""
    sender = f"steady@{hosted.domain}"
    hosted.create_mailbox(sender, PASSWORD)
    socket_path = stack.mail.layout.ratelimit_socket
    hidden = socket_path.with_name("ratelimit.hidden")
    postfix_config = str(stack.mail.layout.postfix_config)
    tag = uuid.uuid4().hex
    socket_path.rename(hidden)  # the service keeps listening, where Postfix does not look
    try:
        # New smtpd processes, without a connection to the service kept from an earlier message.
        subprocess.run([str(POSTFIX), "-c", postfix_config, "reload"], check=True, capture_output=True)
        time.sleep(1)
        with _logged_in(stack, sender) as client:
            refusal = _refusal(client, sender, [f"out-{tag}@elsewhere.example"], f"{tag} unchecked")
    finally:
        hidden.rename(socket_path)
    assert refusal is not None, stack.log_tail()
    code, reply = refusal
    assert code == 451 and reply.startswith("4.3.0 "), (refusal, stack.log_tail())
    assert SERVICE_UNAVAILABLE.removeprefix("451 4.3.0 ") in reply, reply
    with _logged_in(stack, sender) as client:
        assert _refusal(client, sender, [f"out-{tag}@elsewhere.example"], f"{tag} checked") is None


@pytest.fixture(autouse=True)
def _no_leftover_hidden_socket(stack: Stack) -> None:
    hidden = stack.mail.layout.ratelimit_socket.with_name("ratelimit.hidden")
    if hidden.exists():
        hidden.rename(stack.mail.layout.ratelimit_socket)
