"""`postwerk mail-services`: Postwerk's own services for the system-wide Postfix and Dovecot, listening on
exactly the sockets the configuration of `postwerk config render` names, stopped cleanly by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from postwerk.mailstack.layout import SYSTEM_ACCOUNTS, Layout
from postwerk.mailstack.render import render
from postwerk.settings import Settings
from tests.conftest import missing

START_TIMEOUT = 30.0
_SOCKET = re.compile(r"(/[^\s,}]+\.sock)\b")


def _postwerk(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "postwerk.cli", *arguments]


def test_mail_services_listen_where_the_rendered_configuration_looks(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        missing("the mail services need root")
    data, run = tmp_path / "data", tmp_path / "run"
    common = ("--data-dir", str(data))
    subprocess.run(_postwerk("db", "upgrade", *common), check=True, capture_output=True, timeout=60)
    settings = Settings(data_dir=data, mail_hostname="mx.postwerk.test", mail_services_dir=run)
    layout = Layout.system(data, services=run)
    rendered = "\n".join(file.content for file in render(settings, layout, SYSTEM_ACCOUNTS, 0))
    expected = {Path(path) for path in _SOCKET.findall(rendered)}
    assert {layout.policy_socket, layout.usage_socket, layout.tables_socket} <= expected
    assert all(path.parent == run for path in expected)

    process = subprocess.Popen(
        _postwerk(
            "mail-services", *common, "--mail-services-dir", str(run), "--mail-hostname", "mx.postwerk.test"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        assert process.stdout is not None
        while "mail services up" not in (line := process.stdout.readline()):
            assert line and time.monotonic() < deadline, f"mail-services did not come up: {line!r}"
        for path in expected:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(10)
                client.connect(str(path))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(layout.policy_socket))
            client.sendall(
                b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=x@nowhere.example\n\n"
            )
            assert client.recv(1024) == b"action=DUNNO\n\n"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not any(path.exists() for path in expected)
