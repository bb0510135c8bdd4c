"""From settings to Postfix and Dovecot configuration files (templates in `templates/`, one set for both
layouts)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy.engine import make_url

from postwerk.domain.sending_rate import SERVICE_UNAVAILABLE
from postwerk.mailstack import outbound, tables
from postwerk.mailstack.layout import (
    DISABLED_DOMAIN,
    DOVECOT_LDA,
    LOOP_DOMAIN,
    MAILBOX_DOMAIN,
    Accounts,
    Layout,
)
from postwerk.settings import Settings, split_host_port

POSTFIX_MAPS = ("domains", "mailboxes", "routes", "catch_alls", "postmaster", "room", "srs_transport")
# On PostgreSQL only: the recipient maps in one (`recipients.pgsql.cf`, migration 0012).
POSTGRES_MAPS = ("recipients",)
# The recipient maps in the order virtual_alias_maps asks them, per driver; `srs_reverse` between them.
_RECIPIENT_MAPS = {
    "sqlite": ("map:mailboxes", "map:routes", "map:postmaster", "srs_reverse_map", "map:catch_alls"),
    "pgsql": ("map:recipients", "srs_reverse_map"),
}
# A lookup key in a map's query: '%s' (the whole key), '%u' (its local part), '%d' (its domain); not as the
# argument of a postwerk_ function, which converts it itself (migrations 0007, 0012, 0013, 0014).
_KEY_CONVERTING_FUNCTIONS = (
    "postwerk_routes",
    "postwerk_recipient",
    "postwerk_domain",
    "postwerk_mailbox_room",
)
_LOOKUP_KEY = re.compile("".join(rf"(?<!{name}\()" for name in _KEY_CONVERTING_FUNCTIONS) + r"'%([sud])'")


# A map query that is one call of one of Postwerk's functions (migrations 0007, 0012, 0013, 0014).
_FUNCTION_CALL = re.compile(r"SELECT (postwerk_\w+\([^()]*\))")
# Maps whose every answer is ASCII: hosted domains (A-labels), the room map (OK, DUNNO).
ASCII_ANSWER_MAPS = frozenset({"domains", "room"})


def _as_latin1(answer: str) -> str:
    """SQL for the Latin-1 text whose bytes are the UTF-8 of `answer`, what Postfix's LATIN1 client reads."""
    return f"convert_from(convert_to({answer}, 'UTF8'), 'LATIN1')"


def _postgres_key(match: re.Match[str]) -> str:
    """SQL for the text of a key Postfix 3.7 sends on its LATIN1 connection. ASCII keys (the test is constant,
    so PostgreSQL folds the CASE away when it plans the query) are used as they are: the conversion alone
    costs about half of a cheap lookup. PostgreSQL gives convert_from's text the collation "C", which no
    index of the tables has: without COLLATE "default" a lookup by key scans the whole table."""
    key = f"'%{match.group(1)}'"
    return (
        f"(CASE WHEN octet_length({key}) = char_length({key}) THEN {key} "
        f"ELSE convert_from(convert_to({key}, 'LATIN1'), 'UTF8') COLLATE \"default\" END)"
    )


# Dovecot's userdb: a mailbox by its id (the user name every passdb answer and the LDA give).
_USER_QUERIES = {
    "sqlite": "SELECT mailbox_id AS user FROM mail_mailboxes WHERE mailbox_id = '%u'",
    "pgsql": "SELECT postwerk_mailbox_user('%u') AS user",
}

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

    def map_file(self, content: str, *, ascii_answers: bool = False) -> str:
        """A Postfix map file as this database needs it.

        PostgreSQL: Postfix 3.7's pgsql client sets `client_encoding` to LATIN1 on every connection (3.8
        made it a setting, `encoding`, pinned here so both behave alike), so PostgreSQL would take the UTF-8
        bytes of an SMTPUTF8 address for Latin-1 characters and find nothing, and could not send back an
        answer that is no Latin-1 text (a UTF-8 forward target). Each key is turned back into the text
        Postfix meant (its Latin-1 bytes read as UTF-8), and each answer into the Latin-1 text whose bytes
        are its UTF-8: around a query that is one call of a postwerk_ function, in place (a query around it
        cost PostgreSQL about 25 us of CPU a lookup, a fifth of a cheap one: bench/RESULTS.md, session 9);
        not at all for a map whose answers are ASCII by what they are (`ascii_answers`: A-label domains,
        the room map's OK and DUNNO).
        """
        if self.driver != "pgsql":
            return content
        lines: list[str] = []
        for line in content.splitlines():
            if lines and line[:1].isspace() and lines[-1].startswith("query = "):
                lines[-1] += "\n" + line  # a continuation line of the query
            else:
                lines.append(line)
        converted = []
        for line in lines:
            if line.startswith("query = "):
                query = _LOOKUP_KEY.sub(_postgres_key, line[8:])
                if ascii_answers:
                    line = f"query = {query}"
                elif call := _FUNCTION_CALL.fullmatch(query):
                    line = f"query = SELECT {_as_latin1(call.group(1))}"
                else:
                    line = f"query = SELECT {_as_latin1('answer')}\n    FROM ({query}) AS lookup(answer)"
            converted.append(line)
            if line.startswith("dbname = "):
                converted.append("encoding = LATIN1")
        return "\n".join(converted) + "\n"

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
        query = parsed.normalized_query
        host = parsed.host or next(iter(query.get("host", ())), None)
        port = parsed.port or next(iter(query.get("port", ())), None)
        database = parsed.database or ""
        dovecot = [f"host={host}"] if host else []
        dovecot += [f"port={port}"] if port else []
        dovecot.append(f"dbname={database}")
        if parsed.username:
            dovecot.append(f"user={parsed.username}")
        if parsed.password:
            dovecot.append(f"password={parsed.password}")
        if host and not host.startswith("/"):
            postfix = [f"hosts = inet:{host}:{port or 5432}", f"dbname = {database}"]
            if parsed.username:
                postfix.append(f"user = {parsed.username}")
            if parsed.password:
                postfix.append(f"password = {parsed.password}")
        else:
            # A Unix socket (libpq's default folder when the URL names no host, as for psycopg): Postfix's
            # `unix:` form takes no port, its URI form everything; `dbname` must be there too, unused.
            postfix = [f"hosts = {_libpq_socket_uri(parsed.username, parsed.password, database, host, port)}"]
            postfix.append(f"dbname = {database}")
        return cls("pgsql", "\n".join(postfix), "driver = pgsql\nconnect = " + " ".join(dovecot))


def _libpq_socket_uri(
    user: str | None, password: str | None, database: str, folder: str | None, port: int | str | None
) -> str:
    credentials = quote(user or "", safe="")
    if password:
        credentials += ":" + quote(password, safe="")
    given = {name: value for name, value in (("host", folder), ("port", port)) if value}
    options = urlencode(given, safe="/")
    authority = f"{credentials}@" if credentials else ""
    return f"postgresql://{authority}/{quote(database, safe='')}" + (f"?{options}" if options else "")


def postfix_maps(driver: str) -> tuple[str, ...]:
    """The Postfix map files rendered for a database driver."""
    return POSTFIX_MAPS + (POSTGRES_MAPS if driver == "pgsql" else ())


def map_file(name: str) -> str:
    # Prefixed: in the system-wide layout they sit beside the provider's own files in /etc/postfix.
    return f"postwerk-{name}.cf"


def _map_template(name: str, driver: str) -> str:
    """A map's template for the database driver (`routes.pgsql.cf`), or the one for both (`routes.cf`)."""
    special = resources.files("postwerk.mailstack").joinpath(f"templates/postfix/{name}.{driver}.cf")
    if special.is_file():
        return special.read_text(encoding="utf-8")
    return _template(f"postfix/{name}.cf")


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


INTERNAL_DOMAINS = (MAILBOX_DOMAIN, DISABLED_DOMAIN, LOOP_DOMAIN)


def _self_map(domains: tuple[str, ...]) -> str:
    """An in-process Postfix table for main.cf (inline regexp, Postfix 3.7+) that answers an address in one of
    `domains` with itself, which ends Postfix's virtual alias expansion there."""
    alternatives = "|".join(re.escape(domain) for domain in domains)
    # `$$`: main.cf expands `$` itself; the table gets `$/` (end of text) and `$1`.
    return f"regexp:{{ {{/^([^@]+@({alternatives}))$$/ $$1}} }}"


def _inet_interfaces(hosts: list[str]) -> str:
    """main.cf's inet_interfaces for the hosts of Postfix's public listeners (MX and submission)."""
    if "all" in hosts:
        return "all"
    return ", ".join(dict.fromkeys(hosts))


def submission_values(settings: Settings, layout: Layout) -> dict[str, str]:
    """The submission services (master.cf) and what their checks ask (main.cf): SMTP AUTH through
    Dovecot's auth service, and Postwerk's socketmap tables for who may send as which envelope sender
    (`postwerk.domain.submission`)."""
    tables = f"socketmap:unix:{layout.tables_socket}"
    return {
        "submission_listen": _postfix_service(settings.submission)[0],
        "submissions_listen": _postfix_service(settings.submissions)[0],
        "sasl_socket": str(layout.sasl_socket),
        "sender_owners_map": f"{tables}:sender-owners",
        "sending_disabled_map": f"{tables}:sending-disabled",
        # The milter of the submission services (`postwerk.dkim`: header From: check, DKIM signing); a
        # space-separated list of milter addresses. Unreachable, Postfix answers 451 (milter_default_action
        # = tempfail, its default): submitted mail is never sent unchecked or unsigned.
        "submission_milters": f"unix:{layout.dkim_socket}",
    }


def ratelimit_restrictions(layout: Layout) -> str:
    """The submission services' end-of-data check: Postwerk's rate-limit service (`postwerk.ratelimit`).
    Unreachable or slower than 10 s, Postfix answers its default_action: a 451, sending fails closed (a
    value with spaces goes in braces of its own: `{ name = value }`)."""
    return (
        f"check_policy_service {{ unix:{layout.ratelimit_socket}, timeout=10s, "
        f"{{ default_action = {SERVICE_UNAVAILABLE} }} }}"
    )


def render(settings: Settings, layout: Layout, accounts: Accounts, mail_uid: int) -> list[RenderedFile]:
    database = Database.from_url(settings.effective_database_url)
    smtp_service, smtp_interfaces = _postfix_service(settings.smtp)
    # Every public smtpd's address: a wildcard service name ("587") listens on inet_interfaces.
    submission_hosts = [_postfix_service(value)[1] for value in (settings.submission, settings.submissions)]
    interfaces = _inet_interfaces([smtp_interfaces, *submission_hosts])
    values: dict[str, str] = {
        "mail_hostname": settings.mail_hostname,
        "message_size_limit": str(settings.message_size_limit),
        "smtp_listen": smtp_service,
        "smtp_host": interfaces,
        "inet_protocols": "all" if interfaces == "all" or ":" in interfaces else "ipv4",
        "tls_cert": str(layout.tls_cert),
        "tls_key": str(layout.tls_key),
        "mailbox_domain": MAILBOX_DOMAIN,
        "disabled_domain": DISABLED_DOMAIN,
        "loop_domain": LOOP_DOMAIN,
        "internal_domains_excluded": ", ".join(f"!{domain}" for domain in INTERNAL_DOMAINS),
        "internal_domains_refused": "inline:{ "
        + ", ".join(f"{{ {domain} = REJECT }}" for domain in INTERNAL_DOMAINS)
        + " }",
        "internal_self_map": _self_map(INTERNAL_DOMAINS),
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
    values.update(submission_values(settings, layout))
    values["ratelimit_restrictions"] = ratelimit_restrictions(layout)
    # Recipients and domains spelled another way than the SQL maps find (NFD): see postwerk.mailstack.tables.
    utf8_filter = layout.postfix_config / tables.UTF8_KEY_FILTER_FILE
    for name in ("address-key", "domain-key"):
        socketmap = f"socketmap:unix:{layout.tables_socket}:{name}"
        values[name.replace("-", "_") + "_map"] = f"pipemap:{{ regexp:{utf8_filter}, {socketmap} }}"
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
    map_names = postfix_maps(database.driver)
    for name in map_names:
        values[f"map:{name}"] = f"proxy:{database.driver}:{layout.postfix_config / map_file(name)}"
    values["recipient_maps"] = ", ".join(values[name] for name in _RECIPIENT_MAPS[database.driver])
    values["user_query"] = _USER_QUERIES[database.driver]

    files = [
        RenderedFile(layout.postfix_config / name, _fill(_template(f"postfix/{name}"), values, name), 0o644)
        for name in ("main.cf", "master.cf")
    ]
    # Map files and the Dovecot SQL file may hold the database password: readable by the database group.
    map_values = {**values, "database": database.postfix_lines}
    files += [
        RenderedFile(
            layout.postfix_config / map_file(name),
            database.map_file(
                _fill(_map_template(name, database.driver), map_values, f"{name}.cf"),
                ascii_answers=name in ASCII_ANSWER_MAPS,
            ),
            0o640,
            accounts.db_group,
        )
        for name in map_names
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
    files.append(RenderedFile(utf8_filter, tables.UTF8_KEY_FILTER, 0o644))
    relay_login = outbound.relay_password_file(settings, layout)
    if relay_login is not None:
        # Root's alone: Postfix's smtp client opens it before it gives up root.
        files.append(RenderedFile(relay_login[0], relay_login[1], 0o600))
    return files
