"""The embedded mail servers of `postwerk serve`: Postwerk's own Postfix and Dovecot instances, configured in
the data folder, run in the foreground under the supervisor."""

from __future__ import annotations

import grp
import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy.engine import make_url

from postwerk.mailstack import permissions, tls
from postwerk.mailstack.layout import DOVEADM, DOVECOT, EMBEDDED_ACCOUNTS, POSTFIX, Accounts, Layout
from postwerk.mailstack.permissions import MailSetupError
from postwerk.mailstack.render import RenderedFile, render
from postwerk.mailstack.supervisor import ChildSpec, Supervisor
from postwerk.mailstack.tls_reload import CertificateWatcher
from postwerk.settings import Settings, split_host_port

log = logging.getLogger("postwerk.mailstack")

COMMAND_TIMEOUT = 60.0
READY_TIMEOUT = 30.0


def write_files(files: list[RenderedFile], *, relocate: dict[Path, Path] | None = None) -> list[Path]:
    """Write rendered files (atomically, with their mode and group); `relocate` maps a folder of the
    layout to the folder the file is written to instead."""
    written = []
    for rendered in files:
        path = rendered.path
        for folder, target in (relocate or {}).items():
            if path.is_relative_to(folder):
                path = target / path.relative_to(folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(rendered.content)
        if rendered.group is not None and os.geteuid() == 0:
            shutil.chown(temporary, group=rendered.group)
        temporary.chmod(rendered.mode)
        temporary.replace(path)
        written.append(path)
    return written


def mail_uid(accounts: Accounts) -> int:
    try:
        return pwd.getpwnam(accounts.mail_user).pw_uid
    except KeyError:
        raise MailSetupError(
            f"the user {accounts.mail_user!r} does not exist: {permissions.FIX_ACCOUNTS}"
        ) from None


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)


def wait_for_port(listener: str, deadline: float) -> None:
    host, port = split_host_port(listener)
    if host in {"0.0.0.0", "::", "*"}:
        host = "127.0.0.1"
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise MailSetupError(
                    f"nothing listens on {listener} (see the logs in the data folder)"
                ) from None
            time.sleep(0.05)


FATAL_LINES = 3
_LOG_TAIL_BYTES = 16_384


def last_fatal_lines(log_file: Path) -> str:
    """The last few `fatal:` and `panic:` lines of a Postfix log file, joined; empty when there are none."""
    try:
        with log_file.open("rb") as stream:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
            tail = stream.read().decode(errors="replace")
    except OSError:
        return ""
    fatal = [line.strip() for line in tail.splitlines() if " fatal: " in line or " panic: " in line]
    return " | ".join(fatal[-FATAL_LINES:])


def _wait_for_socket(path: Path, deadline: float) -> None:
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1)
                probe.connect(str(path))
                return
        except OSError:
            if time.monotonic() > deadline:
                raise MailSetupError(f"nothing listens on {path} (see Postwerk's log)") from None
            time.sleep(0.05)


class MailStack:
    def __init__(
        self, settings: Settings, accounts: Accounts = EMBEDDED_ACCOUNTS, layout: Layout | None = None
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        # Another layout: `postwerk mail-services`, which runs only Postwerk's own services (see services()).
        self.layout = layout or Layout.embedded(settings.data_dir, settings.tls_cert, settings.tls_key)
        url = make_url(settings.effective_database_url)
        self.sqlite_path = (
            Path(url.database).resolve() if url.get_backend_name() == "sqlite" and url.database else None
        )
        self.supervisor: Supervisor | None = None
        self.tls_watcher: CertificateWatcher | None = None

    def prepare(self) -> None:
        """Folders, certificate and configuration in the data folder; then the check, as each mail server
        user, that it reaches what it needs. Raises MailSetupError naming the fix."""
        if os.geteuid() != 0:
            raise MailSetupError(
                "the mail servers need root; run `postwerk serve --role api` for the API alone"
            )
        for program in (POSTFIX, DOVECOT):
            if not program.exists():
                raise MailSetupError(f"{program} is not installed: {permissions.FIX_ACCOUNTS}")
        if (self.settings.tls_cert is None) != (self.settings.tls_key is None):
            raise MailSetupError("give both --tls-cert and --tls-key, or neither (for a self-signed one)")
        permissions.prepare(self.layout, self.accounts, self.settings.data_dir, self.sqlite_path)
        if self.settings.tls_cert is None and tls.ensure_self_signed(
            self.layout.tls_cert, self.layout.tls_key, self.settings.mail_hostname
        ):
            log.info("made a self-signed certificate for %s", self.settings.mail_hostname)
        write_files(render(self.settings, self.layout, self.accounts, mail_uid(self.accounts)))
        permissions.check_access(self.layout, self.accounts, self.sqlite_path)
        checked = _run([str(POSTFIX), "-c", str(self.layout.postfix_config), "check"])
        if checked.returncode != 0:
            raise MailSetupError(f"Postfix refuses its configuration: {checked.stderr.strip()}")

    def _postfix(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return _run([str(POSTFIX), "-c", str(self.layout.postfix_config), *arguments])

    def _stop_postfix(self, process: subprocess.Popen[bytes]) -> None:
        # The child is Postfix's start script, not the master: ask the master itself.
        if self._postfix("stop").returncode != 0:
            process.terminate()

    def _stop_stale_postfix(self) -> None:
        # `start-fg` leaves the master a child of Postfix's start script, so a Postwerk that was killed can
        # leave it running; it would refuse a second one.
        if self._postfix("status").returncode == 0:
            log.warning("a Postfix of this data folder was still running (Postwerk killed?): stopping it")
            self._postfix("stop")

    def _postfix_fatal_errors(self) -> str:
        """The last fatal errors in the instance's own log (none when Postfix logs to syslog)."""
        if self.layout.logs is None:
            return ""
        return last_fatal_lines(self.layout.logs / "postfix.log")

    def _stop_stale_dovecot(self) -> None:
        pid_file = self.layout.dovecot_base / "master.pid"
        if pid_file.exists():
            result = _run([str(DOVEADM), "-c", str(self.layout.dovecot_conf), "stop"])
            if result.returncode == 0:
                log.warning("a Dovecot of this data folder was still running (Postwerk killed?): stopped it")

    def _service(self, name: str, module: str, socket_path: Path, group: str) -> ChildSpec:
        """One of Postwerk's own services for the mail servers, in a process of its own (a crash restarts
        it alone; its event loop never competes with the API's). Its environment is made here: the
        database URL (maybe with a password) travels there, never on a command line others can read."""
        command = [sys.executable, "-m", module, "--socket", str(socket_path), "--group", group]
        return ChildSpec(name, command, env=self._environment())

    def _environment(self) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "POSTWERK_DATA_DIR": str(self.settings.data_dir.resolve()),
            "POSTWERK_DATABASE_URL": self.settings.effective_database_url,
            "POSTWERK_LOG_LEVEL": self.settings.log_level,
        }

    def _tables_service(self) -> ChildSpec:
        """Postwerk's socketmap tables for Postfix (SRS, `postwerk.mailstack.tables`). The SRS key lives in
        the data folder, root's alone: SRS addresses must reverse across restarts."""
        spec = self._service(
            "tables", "postwerk.mailstack.tables", self.layout.tables_socket, self._postfix_group()
        )
        srs = ["--srs-domain", self.settings.mail_hostname, "--srs-secret", str(self.srs_secret)]
        return replace(spec, command=[*spec.command, *srs])

    def _ratelimit_service(self) -> ChildSpec:
        """The sending rate limits of the submission services (`postwerk.ratelimit`): Postfix's smtpd
        connects to it; it reads the tiers from the settings it is given here."""
        spec = self._service(
            "ratelimit", "postwerk.ratelimit", self.layout.ratelimit_socket, self._postfix_group()
        )
        tiers = {
            "POSTWERK_RATE_LIMIT_TIERS": json.dumps(self.settings.rate_limit_tiers),
            "POSTWERK_DEFAULT_RATE_LIMIT": str(self.settings.default_rate_limit),
        }
        return replace(spec, env={**(spec.env or {}), **tiers})

    @property
    def srs_secret(self) -> Path:
        return self.settings.data_dir.resolve() / "srs-secret"

    def _postfix_group(self) -> str:
        # Postfix's processes keep only the primary group of its mail_owner (they drop supplementary ones).
        try:
            return grp.getgrgid(pwd.getpwnam(self.accounts.postfix_owner).pw_gid).gr_name
        except KeyError:
            return self.accounts.db_group

    def _sweep_service(self) -> ChildSpec:
        """Removes the mail of deleted mailboxes after the grace period (`postwerk.mailstack.sweep`); runs
        as root, like the servers' masters: it removes folders of the mail storage user."""
        command = [
            sys.executable,
            "-m",
            "postwerk.mailstack.sweep",
            "--boxes",
            str(self.layout.boxes),
            "--state",
            str(self.layout.boxes.parent / "deleted-boxes.json"),
            "--grace",
            str(self.settings.mail_deletion_grace),
            "--interval",
            str(self.settings.mail_sweep_interval),
        ]
        return ChildSpec("sweep", command, env=self._environment())

    def services(self) -> list[ChildSpec]:
        """Postwerk's own services for the mail servers, with the sockets the rendered configuration
        names (also what `postwerk mail-services` runs beside the system-wide Postfix and Dovecot)."""
        return [spec for spec, _ in self._socket_services()] + [self._sweep_service()]

    def socket_paths(self) -> list[Path]:
        return [socket for _, socket in self._socket_services()]

    def wait_for_services(self, deadline: float) -> None:
        """Until every service of Postwerk's listens on its socket (`time.monotonic()` deadline)."""
        for path in self.socket_paths():
            _wait_for_socket(path, deadline)

    def _socket_services(self) -> list[tuple[ChildSpec, Path]]:
        layout, postfix_group = self.layout, self._postfix_group()
        return [
            (
                self._service("policy", "postwerk.policy", layout.policy_socket, postfix_group),
                layout.policy_socket,
            ),
            (
                self._service("usage", "postwerk.usage", layout.usage_socket, self.accounts.mail_group),
                layout.usage_socket,
            ),
            # Dovecot's passdb (its auth workers run as root; the group may read the hashes anyway).
            (
                self._service("logins", "postwerk.logins", layout.logins_socket, self.accounts.db_group),
                layout.logins_socket,
            ),
            (self._tables_service(), layout.tables_socket),
            # The submission services' milter (header From: check, DKIM signing): Postfix's cleanup and
            # smtpd connect to it; it reads the DKIM keys, which only root and the database group may.
            (self._service("dkim", "postwerk.dkim", layout.dkim_socket, postfix_group), layout.dkim_socket),
            # The submission services' sending rate limits (smtpd_end_of_data_restrictions).
            (self._ratelimit_service(), layout.ratelimit_socket),
        ]

    def _reload_servers(self) -> None:
        for command in (
            [str(POSTFIX), "-c", str(self.layout.postfix_config), "reload"],
            [str(DOVEADM), "-c", str(self.layout.dovecot_conf), "reload"],
        ):
            result = _run(command)
            if result.returncode != 0:
                raise MailSetupError(f"{command[0]} reload: {result.stderr.strip()}")

    def start(self) -> None:
        # Fingerprinted before the servers start: a renewal from now on is seen as a change.
        self.tls_watcher = CertificateWatcher(
            [self.layout.tls_cert, self.layout.tls_key], self._reload_servers
        )
        # Started first and stopped last: Postfix and Dovecot find them whenever they run.
        self.supervisor = Supervisor(
            [
                *self.services(),
                ChildSpec(
                    "postfix",
                    [str(POSTFIX), "-c", str(self.layout.postfix_config), "start-fg"],
                    stop=self._stop_postfix,
                    before_start=self._stop_stale_postfix,
                    exit_reason=self._postfix_fatal_errors,
                ),
                ChildSpec(
                    "dovecot",
                    [str(DOVECOT), "-F", "-c", str(self.layout.dovecot_conf)],
                    before_start=self._stop_stale_dovecot,
                ),
            ]
        )
        self.supervisor.start()
        self.tls_watcher.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        # Postwerk's services first: a probe of a submission port would otherwise meet a milter not yet
        # listening (and Postfix log it).
        self.wait_for_services(deadline)
        for listener in (
            self.settings.smtp,
            self.settings.submission,
            self.settings.submissions,
            self.settings.imap,
            self.settings.imaps,
        ):
            wait_for_port(listener, deadline)

    def stop(self) -> None:
        if self.tls_watcher is not None:
            self.tls_watcher.stop()
        if self.supervisor is not None:
            self.supervisor.stop()
