"""Postwerk's Postfix queue, for the provider (`postwerk queue`): list it (`postqueue -j`), retry deferred
mail (`postqueue -f`, or `postqueue -i ID` per message), delete messages (`postsuper -d`). Which messages a
sender filter selects is the domain's rule (`postwerk.domain.queue`); this module only runs Postfix's own
tools, on the instance of one configuration folder (`-c DIR`: the data folder's for `postwerk serve`,
`/etc/postfix` for the system-wide layout). Root only, like the tools themselves with `-c`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postwerk.domain.queue import QueuedMessage, QueuedRecipient

POSTQUEUE = Path("/usr/sbin/postqueue")
POSTSUPER = Path("/usr/sbin/postsuper")
COMMAND_TIMEOUT = 120.0
# Postfix queue ids: short (hex) or long (enable_long_queue_ids) form. Anything else is never handed on.
_QUEUE_ID = re.compile(r"^[0-9A-Za-z]{6,32}$")
_DELETED = re.compile(r"Deleted: (\d+) messages?")


class QueueError(Exception):
    """A Postfix tool failed (the mail system down for a flush, no such configuration folder, not root)."""


def _message(entry: dict[str, Any]) -> QueuedMessage:
    recipients = tuple(
        QueuedRecipient(str(recipient.get("address", "")), recipient.get("delay_reason"))
        for recipient in entry.get("recipients", [])
    )
    return QueuedMessage(
        queue_id=str(entry["queue_id"]),
        queue_name=str(entry.get("queue_name", "")),
        arrival_time=datetime.fromtimestamp(int(entry.get("arrival_time", 0)), UTC),
        size=int(entry.get("message_size", 0)),
        sender=str(entry.get("sender", "")),
        recipients=recipients,
    )


def parse_postqueue_json(output: str) -> list[QueuedMessage]:
    """`postqueue -j`: one JSON object per line, one line per queued message."""
    return [_message(json.loads(line)) for line in output.splitlines() if line.strip()]


class PostfixQueue:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    def _run(self, program: Path, *arguments: str, stdin: str | None = None, with_stderr: bool = True) -> str:
        if not (self.config_dir / "main.cf").exists():
            raise QueueError(f"no Postfix configuration in {self.config_dir}")
        try:
            result = subprocess.run(
                [str(program), "-c", str(self.config_dir), *arguments],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise QueueError(f"{program.name} failed: {error}") from None
        if result.returncode != 0:
            detail = result.stderr.strip() or result.stdout.strip() or f"exit status {result.returncode}"
            raise QueueError(f"{program.name}: {detail}")
        return result.stdout + result.stderr if with_stderr else result.stdout

    def messages(self) -> list[QueuedMessage]:
        """Every queued message (while Postfix is down too: postqueue then reads the queue itself)."""
        # Its warnings on stderr would break the JSON.
        return parse_postqueue_json(self._run(POSTQUEUE, "-j", with_stderr=False))

    def flush(self, queue_ids: Sequence[str] | None = None) -> None:
        """Retry deferred mail now: all of it (None), or the given messages."""
        if queue_ids is None:
            self._run(POSTQUEUE, "-f")
            return
        for queue_id in queue_ids:
            self._run(POSTQUEUE, "-i", _checked(queue_id))

    def delete(self, queue_ids: Sequence[str]) -> int:
        """Remove the given messages (no bounce is sent); returns how many Postfix removed."""
        if not queue_ids:
            return 0
        output = self._run(POSTSUPER, "-d", "-", stdin="".join(_checked(i) + "\n" for i in queue_ids))
        return _deleted(output)

    def delete_all(self) -> int:
        return _deleted(self._run(POSTSUPER, "-d", "ALL"))


def _checked(queue_id: str) -> str:
    if not _QUEUE_ID.match(queue_id):
        raise QueueError(f"not a Postfix queue id: {queue_id!r}")
    return queue_id


def _deleted(output: str) -> int:
    match = _DELETED.search(output)
    return int(match.group(1)) if match else 0
