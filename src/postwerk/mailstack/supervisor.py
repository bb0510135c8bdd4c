"""Keeps child servers running: starts them, restarts one that dies (logged), stops them all on request.

Children run in sessions of their own, so a Ctrl-C at the terminal reaches Postwerk only, which then stops
them in order; and they get SIGTERM from the kernel should Postwerk itself be killed.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

log = logging.getLogger("postwerk.mailstack")

POLL_INTERVAL = 0.2
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # a child that ran this long restarts without delay after its next crash
STOP_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGTERM when the forking thread ends.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ChildSpec:
    name: str
    command: Sequence[str]
    # How to stop it: given the process, ask it to end (default: SIGTERM to it).
    stop: Callable[[subprocess.Popen[bytes]], None] | None = None
    # Run before every start (for example: clear what a killed predecessor left behind).
    before_start: Callable[[], None] | None = None
    # The child's whole environment; None: Postwerk's own.
    env: Mapping[str, str] | None = None
    # Why it ended, when it says so elsewhere than on its output (Postfix's master writes its fatal
    # errors to its log file): logged with the exit.
    exit_reason: Callable[[], str] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_delay: float = FIRST_RESTART_DELAY
    restart_at: float | None = None
    restarts: int = 0
    readers: list[threading.Thread] = field(default_factory=list)


def _forward(stream: IO[bytes], name: str) -> None:
    child_log = logging.getLogger(f"postwerk.mailstack.{name}")
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            child_log.info("%s", line)
    stream.close()


class Supervisor:
    def __init__(self, specs: Sequence[ChildSpec]) -> None:
        self._children = [_Child(spec) for spec in specs]
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def restarts(self) -> dict[str, int]:
        return {child.spec.name: child.restarts for child in self._children}

    def pid(self, name: str) -> int | None:
        for child in self._children:
            if child.spec.name == name and child.process is not None and child.process.poll() is None:
                return child.process.pid
        return None

    def start(self) -> None:
        # One thread forks every child and outlives them: the parent-death signal is tied to it.
        self._thread = threading.Thread(target=self._run, name="postwerk-supervisor", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _spawn(self, child: _Child) -> None:
        if child.spec.before_start is not None:
            child.spec.before_start()
        process = subprocess.Popen(
            list(child.spec.command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env=None if child.spec.env is None else dict(child.spec.env),
        )
        assert process.stdout is not None
        reader = threading.Thread(
            target=_forward,
            args=(process.stdout, child.spec.name),
            name=f"{child.spec.name}-output",
            daemon=True,
        )
        reader.start()
        child.readers.append(reader)
        child.process = process
        child.started_at = time.monotonic()
        log.info("%s started (pid %d)", child.spec.name, process.pid)

    def _run(self) -> None:
        try:
            for child in self._children:
                self._spawn(child)
        except BaseException as error:
            self._error = error
            self._started.set()
            self._stop_all()
            return
        self._started.set()
        while not self._stopping.wait(POLL_INTERVAL):
            for child in self._children:
                self._watch(child)
        self._stop_all()

    def _watch(self, child: _Child) -> None:
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                try:
                    self._spawn(child)
                except OSError as error:
                    log.error("%s could not be restarted: %s", child.spec.name, error)
                    self._schedule_restart(child, now)
            return
        assert child.process is not None
        status = child.process.poll()
        if status is None:
            return
        if now - child.started_at >= STABLE_AFTER:
            child.restart_delay = FIRST_RESTART_DELAY
        log.error(
            "%s exited unexpectedly (status %s%s); restarting in %.1f s",
            child.spec.name,
            status,
            _reason(child.spec),
            child.restart_delay,
        )
        child.restarts += 1
        self._schedule_restart(child, now)

    def _schedule_restart(self, child: _Child, now: float) -> None:
        child.restart_at = now + child.restart_delay
        child.restart_delay = min(child.restart_delay * 2, MAX_RESTART_DELAY)

    def _stop_all(self) -> None:
        for child in reversed(self._children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            log.info("stopping %s", child.spec.name)
            try:
                if child.spec.stop is not None:
                    child.spec.stop(process)
                else:
                    process.terminate()
                process.wait(timeout=STOP_TIMEOUT)
            except (subprocess.TimeoutExpired, OSError, subprocess.SubprocessError) as error:
                log.error("%s did not stop in time (%s): killing it", child.spec.name, error)
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        for child in self._children:
            for reader in child.readers:
                reader.join(timeout=5)

    def stop(self) -> None:
        """Stop every child and wait for them (idempotent)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=3 * STOP_TIMEOUT)


def _reason(spec: ChildSpec) -> str:
    if spec.exit_reason is None:
        return ""
    try:
        reason = spec.exit_reason()
    except Exception as error:  # a reason that cannot be read must not stop the restart
        return f"; its reason could not be read: {type(error).__name__}"
    return f": {reason}" if reason else ""
