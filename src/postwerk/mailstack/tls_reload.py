"""A renewed certificate is picked up without a restart: the certificate and key files are watched, and when
either changes (a renewal tool replaces or rewrites them), Postfix and Dovecot are told to reload. Both read
the files only when their processes start: `postfix reload` lets running sessions finish and starts new
smtpd processes with the new files; `doveadm reload` does the same for Dovecot's listeners.

Watched by content, not only by time stamp: renewal tools keep time stamps (`cp -p`, rsync), and a file
rewritten within one second keeps its mtime on some file systems. Reading two small files every few seconds
costs nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("postwerk.mailstack")

CHECK_INTERVAL = 5.0
# A renewal writes the certificate and the key one after the other: wait until both have stood still for
# this long, so no server ever loads a new certificate with the old key.
SETTLE_TIME = 1.0


def fingerprint(paths: Sequence[Path]) -> tuple[str | None, ...]:
    prints: list[str | None] = []
    for path in paths:
        try:
            prints.append(hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError:
            prints.append(None)  # being replaced right now: compared again on the next check
    return tuple(prints)


class CertificateWatcher:
    def __init__(
        self,
        paths: Sequence[Path],
        reload: Callable[[], None],
        *,
        interval: float = CHECK_INTERVAL,
        settle: float = SETTLE_TIME,
    ) -> None:
        self.paths = list(paths)
        self.reload = reload
        self.interval = interval
        self.settle = settle
        self.reloads = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded = fingerprint(self.paths)

    def check(self) -> bool:
        """Reload when the files differ from what the servers loaded; True when it did."""
        current = fingerprint(self.paths)
        if current == self._loaded or None in current:
            return False
        # Changed: wait until the renewal is done, then load what is there.
        while not self._stop.wait(self.settle):
            settled = fingerprint(self.paths)
            if settled == current:
                break
            current = settled
        if self._stop.is_set() or None in current:
            return False
        log.info("the TLS certificate or key changed: reloading Postfix and Dovecot")
        try:
            self.reload()
        except Exception as error:  # tried again on the next check
            log.error("reloading after a certificate change failed: %s", error)
            return False
        self._loaded = current
        self.reloads += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="postwerk-tls-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
