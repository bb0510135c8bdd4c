"""Where the mail servers' files live, and the system accounts they run as.

Two layouts share one set of templates: the embedded one (everything inside Postwerk's data folder, run by
`postwerk serve`) and the system-wide one (`postwerk config render`, for a provider who runs Debian's own
Postfix and Dovecot services).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Internal, never routable domains: a hosted address resolves to <mailbox id>@MAILBOX_DOMAIN (delivered by
# Dovecot's LDA) or, when its receiving is disabled, to <address id>@DISABLED_DOMAIN (refused).
MAILBOX_DOMAIN = "mailbox.postwerk.invalid"
DISABLED_DOMAIN = "disabled.postwerk.invalid"
# <address id>@LOOP_DOMAIN: the address's forwards lead round in a circle to no mailbox and nowhere outside
# (refused at RCPT by the policy service; bounced, should the mail get past it).
LOOP_DOMAIN = "loop.postwerk.invalid"

DOVECOT_LDA = Path("/usr/lib/dovecot/dovecot-lda")
POSTFIX = Path("/usr/sbin/postfix")
DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")
# The sockets of Postwerk's own services in the system-wide layout (`postwerk mail-services`).
SYSTEM_SERVICES = Path("/run/postwerk")


@dataclass(frozen=True)
class Accounts:
    """System users and groups (made by `make mail-deps`)."""

    # Postfix's mail_owner. Postfix drops supplementary groups when it gives up root, so the embedded
    # instance has a user of its own whose primary group is `db_group`.
    postfix_owner: str
    # Owns every Maildir; Dovecot's mail processes and its LDA run as it. Its group is another one: Postfix's
    # pipe(8) refuses to run a command with the mail_owner's group. It never opens the database (the LDA
    # asks Dovecot's auth service), but it must enter the data folder.
    mail_user: str
    mail_group: str
    # May read (and, for SQLite's WAL index, write) the database files.
    db_group: str


EMBEDDED_ACCOUNTS = Accounts(
    postfix_owner="postwerk-postfix",
    mail_user="postwerk-mail",
    mail_group="postwerk-mail",
    db_group="postwerk",
)
# The system-wide services read PostgreSQL, so Debian's own postfix user serves.
SYSTEM_ACCOUNTS = Accounts(
    postfix_owner="postfix", mail_user="postwerk-mail", mail_group="postwerk-mail", db_group="postwerk"
)


@dataclass(frozen=True)
class Layout:
    postfix_config: Path
    postfix_queue: Path
    postfix_data: Path
    dovecot_config: Path
    dovecot_base: Path
    dovecot_state: Path
    logs: Path | None  # None: the system's logging (syslog or journal)
    boxes: Path
    tls_cert: Path
    tls_key: Path
    instance: str
    # Sockets of Postwerk's own services for the mail servers (policy service, usage and login dictionaries).
    services: Path

    @property
    def dovecot_conf(self) -> Path:
        return self.dovecot_config / "dovecot.conf"

    @property
    def dovecot_sql(self) -> Path:
        return self.dovecot_config / "postwerk-sql.conf.ext"

    @property
    def dovecot_logins(self) -> Path:
        return self.dovecot_config / "postwerk-logins.conf.ext"

    @property
    def sasl_socket(self) -> Path:
        # Dovecot's authentication for Postfix's submission services (SMTP AUTH; a unix listener of
        # Dovecot's auth service, in its base folder, for Postfix's mail_owner alone).
        return self.dovecot_base / "auth-postfix"

    @property
    def logins_socket(self) -> Path:
        # Postwerk's login dictionary for Dovecot's passdb (see `postwerk.logins`).
        return self.services / "logins.sock"

    @property
    def policy_socket(self) -> Path:
        return self.services / "policy.sock"

    @property
    def usage_socket(self) -> Path:
        return self.services / "usage.sock"

    @property
    def dkim_socket(self) -> Path:
        # Postwerk's submission milter (header From: check, DKIM signing; see `postwerk.dkim`).
        return self.services / "dkim.sock"

    @property
    def ratelimit_socket(self) -> Path:
        # Postwerk's sending rate limits for the submission services (see `postwerk.ratelimit`).
        return self.services / "ratelimit.sock"

    @property
    def tables_socket(self) -> Path:
        # Postwerk's own lookup tables for Postfix (socketmap: SRS; see `postwerk.mailstack.tables`).
        return self.services / "tables.sock"

    @classmethod
    def embedded(cls, data_dir: Path, tls_cert: Path | None = None, tls_key: Path | None = None) -> Layout:
        # Absolute: the servers run with other working directories.
        root = data_dir.resolve() / "mail"
        return cls(
            postfix_config=root / "postfix",
            postfix_queue=root / "postfix-queue",
            postfix_data=root / "postfix-data",
            dovecot_config=root / "dovecot",
            dovecot_base=root / "dovecot-run",
            dovecot_state=root / "dovecot-state",
            logs=root / "log",
            boxes=root / "boxes",
            tls_cert=tls_cert.resolve() if tls_cert else root / "tls" / "cert.pem",
            tls_key=tls_key.resolve() if tls_key else root / "tls" / "key.pem",
            instance="postwerk",
            services=root / "services",
        )

    @classmethod
    def system(
        cls,
        data_dir: Path,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        services: Path | None = None,
    ) -> Layout:
        return cls(
            postfix_config=Path("/etc/postfix"),
            postfix_queue=Path("/var/spool/postfix"),
            postfix_data=Path("/var/lib/postfix"),
            dovecot_config=Path("/etc/dovecot"),
            dovecot_base=Path("/run/dovecot"),
            dovecot_state=Path("/var/lib/dovecot"),
            logs=None,
            boxes=data_dir.resolve() / "mail" / "boxes",
            tls_cert=tls_cert or Path("/etc/ssl/certs/ssl-cert-snakeoil.pem"),
            tls_key=tls_key or Path("/etc/ssl/private/ssl-cert-snakeoil.key"),
            instance="dovecot",
            services=services or SYSTEM_SERVICES,
        )
