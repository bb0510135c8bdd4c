"""End to end: the provider stops abuse with `postwerk sending suspend|resume`: a mailbox or a delivery box
(its `sendingEnabled`, which the API shows), or a whole project (its accounts created later too). Submission
then refuses the account's mail at RCPT with 550 5.7.1 from the next transaction on; logging in and
receiving are not affected."""

from __future__ import annotations

import json
import smtplib
import uuid

from tests.mail.conftest import (
    Hosted,
    Stack,
    submission_client,
    wait_for_messages,
)
from tests.mail.messages import text_message
from tests.mail.test_provider import postwerk

PASSWORD = "suspended by the provider"
EXTERNAL = "customer@elsewhere.example"


def _submission(stack: Stack, login: str, password: str) -> smtplib.SMTP:
    return submission_client(stack, login, password)


def _try_send(stack: Stack, login: str, password: str, sender: str) -> tuple[int, str]:
    """MAIL and RCPT through submission: (250, "") when both pass, else the refusal."""
    with _submission(stack, login, password) as client:
        code, reply = client.mail(sender)
        if code == 250:
            code, reply = client.rcpt(EXTERNAL)
        return (250, "") if code == 250 else (code, reply.decode())


def _switch(stack: Stack, *args: str) -> dict[str, object]:
    result = postwerk(stack, "sending", *args, "--json")
    assert result.returncode == 0, result.stderr
    done: dict[str, object] = json.loads(result.stdout)
    return done


def _delivery_box(hosted: Hosted) -> tuple[str, str]:
    response = hosted.api.post(
        f"/v2/projects/{hosted.project_id}/delivery-boxes",
        json={"description": "web shop", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    box_id = str(response.json()["id"])
    return box_id, str(hosted.api.get(f"/v2/delivery-boxes/{box_id}").json()["name"])


def test_a_mailbox_and_a_delivery_box_are_suspended_and_resumed(stack: Stack, hosted: Hosted) -> None:
    address = f"Spammer@{hosted.domain}"
    mailbox_id = hosted.create_mailbox(address, PASSWORD)
    box_id, box_name = _delivery_box(hosted)
    assert _try_send(stack, address, PASSWORD, address) == (250, "")

    done = _switch(stack, "suspend", "--mailbox", f"spammer@{hosted.domain.upper()}")
    assert done == {"kind": "mailbox", "id": mailbox_id, "name": address, "sendingEnabled": False}
    assert hosted.api.get(f"/v2/mail-addresses/{mailbox_id}").json()["mailbox"]["sendingEnabled"] is False
    code, reply = _try_send(stack, address, PASSWORD, address)
    assert (code, reply.split()[0]) == (550, "5.7.1") and "sending is disabled" in reply, reply
    # Receiving goes on.
    tag = uuid.uuid4().hex
    with stack.smtp() as client:
        sent = text_message("friend@outside.example", address, tag, "Still here?")
        assert client.sendmail("friend@outside.example", [address], sent) == {}
    assert any(tag.encode() in m for m in wait_for_messages(stack, address, PASSWORD, 1))

    done = _switch(stack, "suspend", "--delivery-box", box_name)
    assert done == {"kind": "deliveryBox", "id": box_id, "name": box_name, "sendingEnabled": False}
    assert hosted.api.get(f"/v2/delivery-boxes/{box_id}").json()["sendingEnabled"] is False
    code, reply = _try_send(stack, box_name, PASSWORD, f"noreply@{hosted.domain}")
    assert (code, reply.split()[0]) == (550, "5.7.1"), reply

    _switch(stack, "resume", "--mailbox", mailbox_id)
    _switch(stack, "resume", "--delivery-box", box_id)
    assert hosted.api.get(f"/v2/mail-addresses/{mailbox_id}").json()["mailbox"]["sendingEnabled"] is True
    assert _try_send(stack, address, PASSWORD, address) == (250, "")
    assert _try_send(stack, box_name, PASSWORD, f"noreply@{hosted.domain}") == (250, "")


def test_a_project_suspension_covers_accounts_made_later(stack: Stack, hosted: Hosted) -> None:
    address = f"info@{hosted.domain}"
    hosted.create_mailbox(address, PASSWORD)
    done = _switch(stack, "suspend", "--project", hosted.project_id)
    assert done["kind"] == "project" and done["sendingEnabled"] is False
    _, box_name = _delivery_box(hosted)  # made after the suspension
    for login, sender in ((address, address), (box_name, f"noreply@{hosted.domain}")):
        code, reply = _try_send(stack, login, PASSWORD, sender)
        assert (code, reply.split()[0]) == (550, "5.7.1") and "suspended" in reply, (login, reply)
    _switch(stack, "resume", "--project", str(done["name"]))  # by its short id
    for login, sender in ((address, address), (box_name, f"noreply@{hosted.domain}")):
        assert _try_send(stack, login, PASSWORD, sender) == (250, ""), login


def test_the_command_names_what_it_cannot_find(stack: Stack) -> None:
    result = postwerk(stack, "sending", "suspend", "--mailbox", "nobody@nowhere.example", "--json")
    assert result.returncode == 1
    assert json.loads(result.stderr.splitlines()[-1])["error"] == "not_found"
    result = postwerk(stack, "sending", "suspend")
    assert result.returncode == 2  # one of --mailbox, --delivery-box, --project is required
