"""The supervisor names why a child ended when the child wrote it elsewhere than on its output (Postfix's
master writes its fatal errors to its log file only)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest

from postwerk.mailstack.stack import FATAL_LINES, last_fatal_lines
from postwerk.mailstack.supervisor import ChildSpec, Supervisor

TIMEOUT = 30.0


def test_an_unexpected_exit_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="postwerk.mailstack")
    spec = ChildSpec(
        "short-lived",
        [sys.executable, "-c", "raise SystemExit(3)"],
        exit_reason=lambda: "fatal: bind 127.0.0.1 port 2525: Address already in use",
    )
    supervisor = Supervisor([spec])
    supervisor.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while supervisor.restarts["short-lived"] == 0:
            assert time.monotonic() < deadline, "the exit was not noticed"
            time.sleep(0.05)
    finally:
        supervisor.stop()
    assert any(
        "short-lived exited unexpectedly (status 3: fatal: bind 127.0.0.1 port 2525" in record.getMessage()
        for record in caplog.records
    ), caplog.text


def test_the_last_fatal_lines_of_a_postfix_log(tmp_path: Path) -> None:
    log_file = tmp_path / "postfix.log"
    assert last_fatal_lines(log_file) == ""  # no log yet
    lines = [f"Nov 27 07:26:5{n} mx postfix/master[11]: fatal: reason {n}" for n in range(5)]
    lines.insert(2, "Nov 27 07:26:52 mx postfix/smtpd[12]: connect from localhost[127.0.0.1]")
    log_file.write_text("\n".join(lines) + "\n")
    found = last_fatal_lines(log_file).split(" | ")
    assert len(found) == FATAL_LINES
    assert found[-1].endswith("fatal: reason 4") and found[0].endswith("fatal: reason 2")
