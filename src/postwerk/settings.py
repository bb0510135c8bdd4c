"""One settings object: command-line flags over environment (`POSTWERK_*`) over defaults.

Nothing else in Postwerk reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSTWERK_", extra="forbid")

    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Folder for the SQLite database, the mail servers' configuration, queue and mail storage"
        " (default /var/lib/postwerk as root, ./postwerk-data otherwise).",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://... to use PostgreSQL; default is the SQLite database in the data folder.",
    )
    api: str = Field(default="127.0.0.1:8080", description="HOST:PORT the HTTP API listens on.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    rate_limit_tiers: list[int] = Field(
        default=[100, 500, 1000, 5000], description="Recipients per hour of each sending rate-limit tier."
    )
    default_rate_limit: int = Field(default=500, description="The tier every new mailbox gets.")
    max_request_bytes: int = Field(default=1024 * 1024, description="Largest request body the API reads.")
    api_threads: int = Field(
        default=4, ge=1, le=256, description="Threads for the API's blocking work (database writes, hashing)."
    )

    role: Literal["all", "api", "mail"] = Field(
        default="all",
        description="What `serve` runs: the API and the mail servers (all), or one of them (api, mail).",
    )
    # Listeners of the embedded Postfix and Dovecot: unprivileged loopback ports by default, so they never
    # collide with a system mail server; production uses 25, 143, 993, 110 and 995 on public addresses.
    smtp: str = Field(default="127.0.0.1:2525", description="HOST:PORT of the MX (Postfix smtpd).")
    # Submission for mail clients and applications (SMTP AUTH); production: 587 and 465.
    submission: str = Field(
        default="127.0.0.1:5870", description="HOST:PORT of SMTP submission with STARTTLS (production: 587)."
    )
    submissions: str = Field(
        default="127.0.0.1:4650",
        description="HOST:PORT of SMTP submission over TLS (implicit TLS; production: 465).",
    )
    imap: str = Field(default="127.0.0.1:1143", description="HOST:PORT of IMAP (STARTTLS).")
    imaps: str = Field(default="127.0.0.1:9933", description="HOST:PORT of IMAP over TLS.")
    pop3: str = Field(default="127.0.0.1:1110", description="HOST:PORT of POP3 (STARTTLS).")
    pop3s: str = Field(default="127.0.0.1:9955", description="HOST:PORT of POP3 over TLS.")
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain; default: a self-signed one made on first start."
    )
    tls_key: Path | None = Field(default=None, description="PEM private key belonging to tls_cert.")
    mail_hostname: str = Field(
        default_factory=socket.gethostname,
        description="The name the mail servers announce (default: the machine's host name, without DNS).",
    )
    # What the DNS records customers publish name (`postwerk domain records`, the mail-domains route).
    public_hostname: str | None = Field(
        default=None,
        description="The host name the world reaches the mail servers by (MX, SRV and autoconfig records);"
        " default: the mail hostname.",
    )
    public_ipv4: str | None = Field(
        default=None, description="The public IPv4 address mail leaves from (the SPF record names it)."
    )
    public_ipv6: str | None = Field(
        default=None, description="The public IPv6 address mail leaves from (the SPF record names it)."
    )
    message_size_limit: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest message accepted, in bytes."
    )
    relay_host: str | None = Field(
        default=None, description="HOST:PORT of a smart host for outbound mail; default: direct MX delivery."
    )
    relay_tls: Literal["none", "may", "encrypt"] = Field(
        default="may",
        description="TLS towards the relay host (or the MX hosts): none, may (opportunistic) or encrypt.",
    )
    relay_user: str | None = Field(default=None, description="SASL login name at the relay host.")
    # No command-line flag on purpose: a flag would show the password in the process list.
    relay_password: SecretStr | None = Field(default=None, description="SASL password at the relay host.")
    postmaster: str | None = Field(
        default=None,
        description="Where postmaster@ of every hosted domain and of the mail hostname goes; default: a"
        " provider mailbox postmaster@<mail hostname> made at first start.",
    )
    reinject: str = Field(
        default="127.0.0.1:2526",
        description="HOST:PORT (loopback) of Postfix's internal second pass that gives forwarded mail its"
        " SRS envelope sender.",
    )
    queue_lifetime: int = Field(
        default=5 * 24 * 3600, ge=1, description="Seconds a message may stay queued before it bounces."
    )
    retry_min: int = Field(default=300, ge=1, description="Seconds before a deferred message is retried.")
    retry_max: int = Field(default=4000, ge=1, description="Longest wait between retries, in seconds.")
    mail_deletion_grace: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="Seconds the mail of a deleted mailbox is kept on disk (counted from the deletion; for a"
        " mailbox deleted before Postwerk recorded deletions, from when the mail node first finds its folder"
        " orphaned) before it is removed; a mailbox restored meanwhile keeps it.",
    )
    mail_services_dir: Path | None = Field(
        default=None,
        description="System-wide layout only (`config render`, `mail-services`): the folder of the sockets"
        " of Postwerk's own mail services; default /run/postwerk.",
    )
    mail_sweep_interval: int = Field(
        default=3600, ge=1, description="Seconds between the mail node's sweeps for deleted mailboxes' mail."
    )

    @field_validator(
        "api", "smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "relay_host", "reinject"
    )
    @classmethod
    def _check_host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value)
        return value

    @field_validator("mail_hostname", "public_hostname")
    @classmethod
    def _check_hostname(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().rstrip(".").lower()
        labels = name.split(".")
        if (
            not name
            or len(name) > 253
            or not all(
                label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
                for label in labels
            )
        ):
            raise ValueError(f"{value!r} is not a host name (ASCII letters, digits, - and .)")
        return name

    @field_validator("public_ipv4", "public_ipv6")
    @classmethod
    def _check_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        version = 4 if info.field_name == "public_ipv4" else 6
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv{version} address") from None
        if address.version != version:
            raise ValueError(f"{value!r} is not an IPv{version} address")
        return str(address)

    @property
    def effective_public_hostname(self) -> str:
        return self.public_hostname or self.mail_hostname

    @property
    def runs_api(self) -> bool:
        return self.role in {"all", "api"}

    @property
    def runs_mail(self) -> bool:
        return self.role in {"all", "mail"}

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "postwerk.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"


def default_data_dir() -> Path:
    # As root the mail servers' own users must reach the folder: a clone in root's home is often closed.
    return Path("/var/lib/postwerk") if os.geteuid() == 0 else Path("./postwerk-data")


def split_host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the given (flag) values taking precedence when not None."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
