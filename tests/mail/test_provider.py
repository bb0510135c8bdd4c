"""End to end: the provider's switches and mailbox. `postwerk address receiving disable|enable` takes effect
on the next SMTP transaction and shows in the API; postmaster@ of every hosted domain and of the mail host
name is always deliverable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from postwerk.mailstack.render import render
from postwerk.service import projects as project_service
from postwerk.service.provider import postmaster_password_file
from postwerk.settings import Settings
from tests.conftest import PASSWORDS_SENT
from tests.mail.conftest import Hosted, Stack, split_trace, wait_for_messages

PASSWORD = "receiving switched by the provider"
COMMAND_TIMEOUT = 120


def _message(recipient: str, subject: str) -> bytes:
    return (
        f"From: a@outside.example\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@client.postwerk.test>\r\n\r\nBody of {subject}.\r\n"
    ).encode()


def postwerk(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `postwerk` command against the stack's database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("POSTWERK_")}
    return subprocess.run(
        [sys.executable, "-m", "postwerk.cli", *args, "--data-dir", str(stack.settings.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def test_receiving_disabled_by_the_provider_refuses_mail_at_once(stack: Stack, hosted: Hosted) -> None:
    address = f"Quiet@{hosted.domain}"
    address_id = hosted.create_mailbox(address, PASSWORD)

    result = postwerk(stack, "address", "receiving", "disable", f"quiet@{hosted.domain.upper()}", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"id": address_id, "address": address, "receivingDisabled": True}
    with stack.smtp() as client:
        assert client.mail("a@outside.example")[0] == 250
        code, reply = client.rcpt(address)
    assert (code, reply.split()[0]) == (550, b"5.2.1"), reply
    shown = hosted.api.get(f"/v2/mail-addresses/{address_id}")
    assert shown.status_code == 200 and shown.json()["receivingDisabled"] is True

    result = postwerk(stack, "address", "receiving", "enable", address_id, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["receivingDisabled"] is False
    assert hosted.api.get(f"/v2/mail-addresses/{address_id}").json()["receivingDisabled"] is False
    sent = _message(address, "after enabling")
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [address], sent) == {}
    (stored,) = wait_for_messages(stack, address, PASSWORD, 1)
    split_trace(stored, sent)


def test_receiving_of_an_unknown_address_is_refused_by_the_command(stack: Stack) -> None:
    result = postwerk(stack, "address", "receiving", "disable", "nobody@nowhere.example", "--json")
    assert result.returncode == 1
    assert json.loads(result.stderr.splitlines()[-1]) == {
        "error": "not_found",
        "message": "no mail address 'nobody@nowhere.example'",
    }


def _postmaster_login(stack: Stack) -> tuple[str, str]:
    path = postmaster_password_file(stack.settings.data_dir)
    assert path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    PASSWORDS_SENT.add(password)  # the suite's check: never in any log line
    return f"postmaster@{stack.settings.mail_hostname}", password


def test_postmaster_of_every_hosted_domain_reaches_the_provider_mailbox(stack: Stack, hosted: Hosted) -> None:
    login, password = _postmaster_login(stack)
    before = len(wait_for_messages(stack, login, password, 0))
    # A domain without any address at all, one with a catch-all (which must not take postmaster@), the
    # internationalised one (A-label), and the mail host name itself.
    _, bare_short = project_service.create_project(stack.context, "no addresses")
    bare = f"bare-{bare_short.removeprefix('p-')}.example.org"
    project_service.add_domain(stack.context, bare, bare_short)
    hosted.create_address(
        {
            "address": f"everything@{hosted.domain}",
            "isCatchAll": True,
            "mailbox": {"password": PASSWORD, "quotaInBytes": -1, "enableSpamProtection": False},
        }
    )
    idn_ascii = hosted.idn_domain.encode("idna").decode()
    recipients = [
        f"postmaster@{bare}",
        f"Postmaster@{hosted.domain}",
        f"postmaster@{idn_ascii}",
        f"postmaster@{stack.settings.mail_hostname}",
    ]
    sent = {recipient: _message(recipient, f"to {recipient}") for recipient in recipients}
    with stack.smtp() as client:
        for recipient, message in sent.items():
            assert client.sendmail("a@outside.example", [recipient], message) == {}, recipient
    stored = wait_for_messages(stack, login, password, before + len(recipients))
    for message in sent.values():
        assert any(item.endswith(message) for item in stored)
    assert wait_for_messages(stack, f"everything@{hosted.domain}", PASSWORD, 0) == []


def test_a_postmaster_address_of_the_domain_itself_wins(stack: Stack, hosted: Hosted) -> None:
    own = f"postmaster@{hosted.domain}"
    hosted.create_mailbox(own, PASSWORD)
    sent = _message(own, "to the domain's own postmaster")
    with stack.smtp() as client:
        assert client.sendmail("a@outside.example", [own], sent) == {}
    (stored,) = wait_for_messages(stack, own, PASSWORD, 1)
    split_trace(stored, sent)


def test_postmaster_flag_is_rendered_as_the_target(stack: Stack) -> None:
    settings = Settings(
        data_dir=stack.settings.data_dir,
        mail_hostname="mx.provider.example",
        postmaster="Hostmaster@Provider.Example",
    )
    files = {
        file.path.name: file.content for file in render(settings, stack.mail.layout, stack.mail.accounts, 0)
    }
    assert "SELECT 'Hostmaster@provider.example' WHERE '%u' = 'postmaster'" in files["postwerk-postmaster.cf"]
