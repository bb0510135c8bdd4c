"""From settings to Postfix and Dovecot configuration files (templates in `templates/`, one set for both
layouts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy.engine import make_url

from postwerk.mailstack import outbound
from postwerk.mailstack.layout import (
    DISABLED_DOMAIN,
    DOVECOT_LDA,
    LOOP_DOMAIN,
    MAILBOX_DOMAIN,
    Accounts,
    Layout,
)
from postwerk.settings import Settings, split_host_port

POSTFIX_MAPS = ("domains", "routes", "catch_alls", "disabled", "postmaster", "srs_transport")
_PLACEHOLDER = re.compile(r"\{\{([a-z0-9_]+(?::[a-z0-9_]+)?)\}\}")


@dataclass(frozen=True)
class RenderedFile:
    path: Path
    content: str
    mode: int
    group: str | None = None  # None: root's


@dataclass(frozen=True)
class Database:
    """How Postfix and Dovecot reach Postwerk's database."""

    driver: str  # "sqlite" or "pgsql", the name both servers use
    postfix_lines: str
    dovecot_lines: str

    @classmethod
    def from_url(cls, url: str) -> Database:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if not parsed.database:
                raise ValueError("the mail servers cannot use an in-memory SQLite database")
            path = Path(parsed.database).resolve()
            return cls("sqlite", f"dbpath = {path}", f"driver = sqlite\nconnect = {path}")
        if parsed.get_backend_name() != "postgresql":
            raise ValueError(f"the mail servers read SQLite or PostgreSQL, not {parsed.get_backend_name()}")
        host = parsed.host or "localhost"
        port = parsed.port or 5432
        postfix = [f"hosts = inet:{host}:{port}", f"dbname = {parsed.database or ''}"]
        dovecot = [f"host={host}", f"port={port}", f"dbname={parsed.database or ''}"]
        if parsed.username:
            postfix.append(f"user = {parsed.username}")
            dovecot.append(f"user={parsed.username}")
        if parsed.password:
            postfix.append(f"password = {parsed.password}")
            dovecot.append(f"password={parsed.password}")
        return cls("pgsql", "\n".join(postfix), "driver = pgsql\nconnect = " + " ".join(dovecot))


def map_file(name: str) -> str:
    # Prefixed: in the system-wide layout they sit beside the provider's own files in /etc/postfix.
    return f"postwerk-{name}.cf"


def _template(name: str) -> str:
    return (resources.files("postwerk.mailstack") / "templates" / name).read_text(encoding="utf-8")


def _fill(template: str, values: dict[str, str], source: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{source}: no value for {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(replace, template)


def _listener(value: str) -> tuple[str, str]:
    host, port = split_host_port(value)
    return host, str(port)


def _postfix_service(value: str) -> tuple[str, str]:
    """The master.cf service name and inet_interfaces value for a HOST:PORT listener."""
    host, port = split_host_port(value)
    if host in {"0.0.0.0", "::", "*"}:
        return str(port), "all"
    return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}"), host


def render(settings: Settings, layout: Layout, accounts: Accounts, mail_uid: int) -> list[RenderedFile]:
    database = Database.from_url(settings.effective_database_url)
    smtp_service, smtp_interfaces = _postfix_service(settings.smtp)
    values: dict[str, str] = {
        "mail_hostname": settings.mail_hostname,
        "message_size_limit": str(settings.message_size_limit),
        "smtp_listen": smtp_service,
        "smtp_host": smtp_interfaces,
        "inet_protocols": "all" if smtp_interfaces == "all" or ":" in smtp_interfaces else "ipv4",
        "tls_cert": str(layout.tls_cert),
        "tls_key": str(layout.tls_key),
        "mailbox_domain": MAILBOX_DOMAIN,
        "disabled_domain": DISABLED_DOMAIN,
        "loop_domain": LOOP_DOMAIN,
        "mail_user": accounts.mail_user,
        "mail_group": accounts.mail_group,
        "db_group": accounts.db_group,
        "mail_uid": str(mail_uid),
        "postfix_mail_owner": accounts.postfix_owner,
        "postfix_queue": str(layout.postfix_queue),
        "postfix_data": str(layout.postfix_data),
        "dovecot_lda": str(DOVECOT_LDA),
        "dovecot_conf": str(layout.dovecot_conf),
        "dovecot_sql": str(layout.dovecot_sql),
        "dovecot_instance": layout.instance,
        "dovecot_base": str(layout.dovecot_base),
        "dovecot_state": str(layout.dovecot_state),
        "boxes": str(layout.boxes),
        "policy_socket": str(layout.policy_socket),
        "usage_socket": str(layout.usage_socket),
        "logins_socket": str(layout.logins_socket),
        "dovecot_logins": str(layout.dovecot_logins),
        "relayhost": "",
    }
    values.update(outbound.values(settings, layout))
    for name in ("imap", "imaps", "pop3", "pop3s"):
        values[f"{name}_host"], values[f"{name}_port"] = _listener(getattr(settings, name))
    if layout.logs is None:
        values["postfix_logging"] = ""
        values["dovecot_logging"] = "log_path = syslog"
    else:
        # No syslog on a bare machine or in a container: without these, every error would be silent.
        values["postfix_logging"] = (
            f"maillog_file = {layout.logs / 'postfix.log'}\nmaillog_file_prefixes = {layout.logs}"
        )
        values["dovecot_logging"] = f"log_path = {layout.logs / 'dovecot.log'}"
    for name in POSTFIX_MAPS:
        values[f"map:{name}"] = f"proxy:{database.driver}:{layout.postfix_config / map_file(name)}"

    files = [
        RenderedFile(layout.postfix_config / name, _fill(_template(f"postfix/{name}"), values, name), 0o644)
        for name in ("main.cf", "master.cf")
    ]
    # Map files and the Dovecot SQL file may hold the database password: readable by the database group.
    map_values = {**values, "database": database.postfix_lines}
    files += [
        RenderedFile(
            layout.postfix_config / map_file(name),
            _fill(_template(f"postfix/{name}.cf"), map_values, f"{name}.cf"),
            0o640,
            accounts.db_group,
        )
        for name in POSTFIX_MAPS
    ]
    files.append(
        RenderedFile(layout.dovecot_conf, _fill(_template("dovecot/dovecot.conf"), values, "dovecot"), 0o644)
    )
    files.append(
        RenderedFile(
            layout.dovecot_sql,
            _fill(
                _template("dovecot/dovecot-sql.conf.ext"),
                {**values, "database": database.dovecot_lines},
                "sql",
            ),
            0o640,
            accounts.db_group,
        )
    )
    # No secret in it (a socket path): readable like dovecot.conf.
    files.append(
        RenderedFile(
            layout.dovecot_logins,
            _fill(_template("dovecot/dovecot-logins.conf.ext"), values, "logins"),
            0o644,
        )
    )
    filter_path, filter_content = outbound.srs_filter_file(settings, layout)
    files.append(RenderedFile(filter_path, filter_content, 0o644))
    relay_login = outbound.relay_password_file(settings, layout)
    if relay_login is not None:
        # Root's alone: Postfix's smtp client opens it before it gives up root.
        files.append(RenderedFile(relay_login[0], relay_login[1], 0o600))
    return files
