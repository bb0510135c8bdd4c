"""The `postwerk` command: the server and the provider's admin commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postwerk.bootstrap import build_context, ensure_first_admin_token
from postwerk.domain.errors import DomainError, ValidationFailed
from postwerk.service import Context, projects
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import ADMIN
from postwerk.settings import Settings, load_settings, split_host_port
from postwerk.store.repository import Page, Sorting

log = logging.getLogger("postwerk")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data folder (env POSTWERK_DATA_DIR, default ./postwerk-data)")
    parser.add_argument(
        "--database-url", help="postgresql://... (env POSTWERK_DATABASE_URL; default: SQLite)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return load_settings(data_dir=args.data_dir, database_url=args.database_url, **extra)


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, ensure_ascii=False) if args.json else text)


def _emit_list(
    args: argparse.Namespace, items: list[dict[str, Any]], line: Callable[[dict[str, Any]], str]
) -> None:
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
        return
    for item in items:
        print(line(item))


_MAIL_FLAGS = (
    "role",
    "smtp",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "tls_cert",
    "tls_key",
    "mail_hostname",
    "message_size_limit",
    "relay_host",
    "relay_tls",
    "relay_user",
    "postmaster",
    "reinject",
    "mail_services_dir",
)


def _mail_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in _MAIL_FLAGS}


class _Terminated(Exception):
    """SIGTERM: unwind like Ctrl-C, so the mail servers are stopped on the way out."""


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise _Terminated


def _wait_for_termination() -> None:
    with contextlib.suppress(KeyboardInterrupt, _Terminated):
        threading.Event().wait()


def cmd_serve(args: argparse.Namespace) -> int:
    from postwerk.mailstack.permissions import MailSetupError
    from postwerk.mailstack.stack import MailStack

    settings = _settings(args, api=args.api, log_level=args.log_level, **_mail_settings(args))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    context = build_context(settings)
    stack = MailStack(settings) if settings.runs_mail else None
    # uvicorn, after its own graceful shutdown, raises the signal it caught again: with this handler that
    # unwinds to the `finally` below instead of ending the process there.
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if stack is not None:
            stack.prepare()
            _ensure_postmaster(context, settings)
            stack.start()
            stack.wait_ready()
            print(
                f"postwerk: mail servers up: SMTP (MX) {settings.smtp}, IMAP {settings.imap} (STARTTLS), "
                f"IMAPS {settings.imaps}, POP3 {settings.pop3} (STARTTLS), POP3S {settings.pop3s}",
                flush=True,
            )
        if settings.runs_api:
            _serve_api(context, settings)
        else:
            _wait_for_termination()
    except MailSetupError as error:
        print(f"postwerk: cannot start the mail servers: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        if stack is not None:
            stack.stop()
    return 0


def _ensure_postmaster(context: Context, settings: Settings) -> None:
    from postwerk.service.provider import ensure_postmaster_mailbox

    if settings.postmaster is not None:
        return
    try:
        made = ensure_postmaster_mailbox(context, settings.mail_hostname, settings.data_dir)
    except DomainError as error:
        # Not fatal: a machine's bare host name (no dots) cannot hold a mail address.
        print(
            f"postwerk: warning: postmaster@ mail cannot be delivered ({_describe(error)}): give"
            " --postmaster ADDRESS, or a fully qualified --mail-hostname",
            file=sys.stderr,
            flush=True,
        )
        return
    if made is not None:
        print(
            f"postwerk: first start: postmaster@{settings.mail_hostname} receives postmaster@ mail of every"
            f" hosted domain; its password was written to {made.resolve()}",
            flush=True,
        )


def _store_stale_documents(context: Context) -> None:
    """In the background: reads are correct meanwhile, only slower for the rows concerned."""
    from postwerk.service.mail_addresses import store_stale_documents

    try:
        stored = store_stale_documents(context)
    except Exception:
        logging.getLogger("postwerk").exception("storing the documents of addresses failed")
        return
    if stored:
        logging.getLogger("postwerk").info("stored the API documents of %d addresses", stored)


def _serve_api(context: Context, settings: Settings) -> None:
    import uvicorn

    from postwerk.api.app import create_app

    threading.Thread(target=_store_stale_documents, args=(context,), name="documents", daemon=True).start()
    token_file = ensure_first_admin_token(context, settings)
    if token_file is not None:
        print(f"postwerk: first start: an admin API token was written to {token_file.resolve()}", flush=True)
    host, port = split_host_port(settings.api)
    app = create_app(
        context, max_request_bytes=settings.max_request_bytes, worker_threads=settings.api_threads
    )
    print(f"postwerk: API on http://{host}:{port}/v2/ (docs: /v2/docs)", flush=True)
    # uvicorn handles SIGINT and SIGTERM itself and returns; the mail servers are stopped after it.
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), server_header=False)


def cmd_config_render(args: argparse.Namespace) -> int:
    from postwerk.mailstack.layout import SYSTEM_ACCOUNTS, Layout
    from postwerk.mailstack.permissions import MailSetupError
    from postwerk.mailstack.render import render
    from postwerk.mailstack.stack import mail_uid, write_files

    settings = _settings(args, **_mail_settings(args))
    if not settings.effective_database_url.startswith(("postgresql", "postgres")):
        raise ValueError(
            "the system-wide layout reads PostgreSQL: give --database-url postgresql://... "
            "(the embedded SQLite database is for `postwerk serve`'s own mail servers)"
        )
    layout = Layout.system(settings.data_dir, settings.tls_cert, settings.tls_key, settings.mail_services_dir)
    out = Path(args.out)
    try:
        uid = mail_uid(SYSTEM_ACCOUNTS)
    except MailSetupError as error:
        print(f"postwerk: {error}", file=sys.stderr)
        return 1
    written = write_files(
        render(settings, layout, SYSTEM_ACCOUNTS, uid),
        relocate={layout.postfix_config: out / "postfix", layout.dovecot_config: out / "dovecot"},
    )
    _emit(
        args,
        {"written": [str(path) for path in written]},
        "\n".join(str(path) for path in written),
    )
    return 0


def cmd_mail_services(args: argparse.Namespace) -> int:
    """Postwerk's own services for the system-wide Postfix and Dovecot (`config render`): the policy
    service, the usage and login dictionaries, the socketmap tables and the sweep of deleted mailboxes' mail,
    supervised, with the sockets the rendered configuration names."""
    import os

    from postwerk.mailstack.layout import SYSTEM_ACCOUNTS, Layout
    from postwerk.mailstack.permissions import MailSetupError
    from postwerk.mailstack.stack import READY_TIMEOUT, MailStack, _wait_for_socket
    from postwerk.mailstack.supervisor import Supervisor

    settings = _settings(args, log_level=args.log_level, **_mail_settings(args))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if os.geteuid() != 0:
        print(
            "postwerk: mail-services needs root (sockets for the mail servers' groups; the sweep removes"
            " the mail storage user's folders)",
            file=sys.stderr,
        )
        return 1
    layout = Layout.system(settings.data_dir, settings.tls_cert, settings.tls_key, settings.mail_services_dir)
    stack = MailStack(settings, SYSTEM_ACCOUNTS, layout)
    supervisor = Supervisor(stack.services())
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        supervisor.start()
        deadline = time.monotonic() + READY_TIMEOUT
        for path in stack.socket_paths():
            _wait_for_socket(path, deadline)
        print(f"postwerk: mail services up, sockets in {layout.services}", flush=True)
        _wait_for_termination()
    except MailSetupError as error:
        print(f"postwerk: mail services did not start: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        supervisor.stop()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    build_context(_settings(args))
    _emit(args, {"upgraded": True}, "database is up to date")
    return 0


def _context(args: argparse.Namespace) -> Context:
    return build_context(_settings(args))


def cmd_project_create(args: argparse.Namespace) -> int:
    project_id, short_id = projects.create_project(_context(args), args.description, args.customer_id)
    _emit(args, {"id": project_id, "shortId": short_id}, f"{project_id} {short_id}")
    return 0


def cmd_project_delete(args: argparse.Namespace) -> int:
    projects.delete_project(_context(args), args.project)
    _emit(args, {"deleted": args.project}, f"deleted project {args.project}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    token_id, token = projects.create_token(
        _context(args), admin=args.admin, project_reference=args.project, read_only=args.read_only
    )
    _emit(args, {"token": token, "id": token_id}, token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    rows = projects.list_tokens(_context(args))
    items = [
        {
            "id": r.id,
            "projectId": r.project_id,
            "admin": r.is_admin,
            "readOnly": r.read_only,
            "createdAt": r.created_at.isoformat(),
        }
        for r in rows
    ]
    _emit_list(
        args,
        items,
        lambda t: "\t".join(
            (
                t["id"],
                "admin" if t["admin"] else f"project {t['projectId']}",
                "read-only" if t["readOnly"] else "read-write",
                t["createdAt"],
            )
        ),
    )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    projects.revoke_token(_context(args), args.token_id)
    _emit(args, {"revoked": args.token_id}, f"revoked token {args.token_id}")
    return 0


def cmd_project_list(args: argparse.Namespace) -> int:
    rows, _ = projects.list_projects(
        _context(args), ADMIN, None, None, [Sorting("created_at")], Page(limit=1_000_000, skip=0)
    )
    items = [{"id": r.id, "shortId": r.short_id, "description": r.description} for r in rows]
    _emit_list(args, items, lambda p: f"{p['id']}\t{p['shortId']}\t{p['description']}")
    return 0


def cmd_domain_add(args: argparse.Namespace) -> int:
    domain = projects.add_domain(_context(args), args.domain, args.project)
    _emit(args, {"domain": domain.unicode, "ascii": domain.ascii}, f"{domain.unicode} ({domain.ascii})")
    return 0


def cmd_domain_remove(args: argparse.Namespace) -> int:
    removed = projects.remove_domain(_context(args), args.domain, with_addresses=args.with_addresses)
    _emit(args, {"removed": args.domain, "addressesRemoved": removed}, f"removed {args.domain}")
    return 0


def cmd_domain_list(args: argparse.Namespace) -> int:
    rows = projects.list_domains(_context(args), args.project)
    items = [{"domain": r.name_unicode, "ascii": r.name_ascii, "projectId": r.project_id} for r in rows]
    _emit_list(args, items, lambda d: f"{d['domain']}\t{d['ascii']}\t{d['projectId']}")
    return 0


def cmd_address_receiving(args: argparse.Namespace) -> int:
    from postwerk.service.provider import set_receiving

    result = set_receiving(_context(args), args.address, enabled=args.switch == "enable")
    state = "disabled" if result.receiving_disabled else "enabled"
    _emit(
        args,
        {"id": result.address_id, "address": result.address, "receivingDisabled": result.receiving_disabled},
        f"receiving {state} for {result.address}",
    )
    return 0


def cmd_rate_limit_approve(args: argparse.Namespace) -> int:
    tier = addresses.approve_rate_limit_change(_context(args), args.mail_address_id)
    _emit(args, {"mailAddressId": args.mail_address_id, "rateLimitId": tier}, f"rate limit {tier} in force")
    return 0


def _mail_arguments(parser: argparse.ArgumentParser) -> None:
    mail = parser.add_argument_group("mail servers")
    mail.add_argument("--smtp", help="HOST:PORT of the MX (env POSTWERK_SMTP, default 127.0.0.1:2525)")
    mail.add_argument(
        "--imap", help="HOST:PORT of IMAP with STARTTLS (env POSTWERK_IMAP, default 127.0.0.1:1143)"
    )
    mail.add_argument(
        "--imaps", help="HOST:PORT of IMAP over TLS (env POSTWERK_IMAPS, default 127.0.0.1:9933)"
    )
    mail.add_argument(
        "--pop3", help="HOST:PORT of POP3 with STARTTLS (env POSTWERK_POP3, default 127.0.0.1:1110)"
    )
    mail.add_argument(
        "--pop3s", help="HOST:PORT of POP3 over TLS (env POSTWERK_POP3S, default 127.0.0.1:9955)"
    )
    mail.add_argument("--tls-cert", help="PEM certificate (env POSTWERK_TLS_CERT; default: self-signed)")
    mail.add_argument("--tls-key", help="PEM private key (env POSTWERK_TLS_KEY)")
    mail.add_argument(
        "--mail-hostname",
        help="name the mail servers announce (env POSTWERK_MAIL_HOSTNAME, default: host name)",
    )
    mail.add_argument(
        "--message-size-limit", type=int, help="bytes (env POSTWERK_MESSAGE_SIZE_LIMIT, default 52428800)"
    )
    mail.add_argument(
        "--relay-host", help="HOST:PORT of a smart host for outbound mail (env POSTWERK_RELAY_HOST)"
    )
    mail.add_argument(
        "--relay-tls",
        choices=("none", "may", "encrypt"),
        help="TLS for outbound mail (env POSTWERK_RELAY_TLS, default may)",
    )
    mail.add_argument(
        "--relay-user",
        help="SASL login at the relay host (env POSTWERK_RELAY_USER; the password only by env"
        " POSTWERK_RELAY_PASSWORD, never a flag)",
    )
    mail.add_argument(
        "--postmaster",
        help="where postmaster@ of every hosted domain goes (env POSTWERK_POSTMASTER; default: a mailbox"
        " postmaster@<mail hostname> made at first start)",
    )
    mail.add_argument(
        "--reinject",
        help="loopback HOST:PORT of Postfix's internal SRS pass (env POSTWERK_REINJECT, default"
        " 127.0.0.1:2526)",
    )


def _services_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mail-services-dir",
        help="folder of the sockets of Postwerk's own mail services (env POSTWERK_MAIL_SERVICES_DIR,"
        " default /run/postwerk)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postwerk", description="Mail hosting with a mittwald-compatible API."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        group: Any, name: str, handler: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help_, description=help_)
        _common(sub)
        sub.set_defaults(handler=handler)
        return sub

    serve = command(
        commands, "serve", cmd_serve, "run the HTTP API and the mail servers (migrations run on start)"
    )
    serve.add_argument("--api", help="HOST:PORT to listen on (env POSTWERK_API, default 127.0.0.1:8080)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING... (env POSTWERK_LOG_LEVEL)")
    serve.add_argument(
        "--role", choices=("all", "api", "mail"), help="what to run (env POSTWERK_ROLE, default all)"
    )
    _mail_arguments(serve)

    config = commands.add_parser("config", help="mail server configuration").add_subparsers(
        dest="config_command", required=True
    )
    config_render = command(
        config,
        "render",
        cmd_config_render,
        "write Postfix and Dovecot configuration for the system-wide services (against PostgreSQL)",
    )
    config_render.add_argument("--out", required=True, help="folder to write postfix/ and dovecot/ into")
    _mail_arguments(config_render)
    _services_dir_argument(config_render)

    mail_services = command(
        commands,
        "mail-services",
        cmd_mail_services,
        "run Postwerk's own services for the system-wide Postfix and Dovecot of `config render`",
    )
    mail_services.add_argument("--log-level", help="DEBUG, INFO, WARNING... (env POSTWERK_LOG_LEVEL)")
    _mail_arguments(mail_services)
    _services_dir_argument(mail_services)

    db = commands.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True
    )
    command(db, "upgrade", cmd_db_upgrade, "run the database migrations")

    project = commands.add_parser("project", help="projects").add_subparsers(
        dest="project_command", required=True
    )
    create = command(project, "create", cmd_project_create, "create a project")
    create.add_argument("--description", required=True)
    create.add_argument("--customer-id", help="the provider's customer id (default: a new UUID)")
    command(project, "list", cmd_project_list, "list every project")
    delete = command(project, "delete", cmd_project_delete, "delete a project and everything in it")
    delete.add_argument("project", help="UUID or short id")

    token = commands.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True
    )
    token_create = command(token, "create", cmd_token_create, "create an API token (shown once)")
    scope = token_create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--admin", action="store_true", help="sees every project")
    scope.add_argument("--project", help="sees this project only (UUID or short id)")
    token_create.add_argument("--read-only", action="store_true", help="may not change anything")
    command(token, "list", cmd_token_list, "list API tokens (their ids and scopes, never the tokens)")
    revoke = command(token, "revoke", cmd_token_revoke, "revoke an API token at once")
    revoke.add_argument("token_id", help="the id shown by `token create --json` or `token list`")

    domain = commands.add_parser("domain", help="hosted domains").add_subparsers(
        dest="domain_command", required=True
    )
    add = command(domain, "add", cmd_domain_add, "assign a domain to a project")
    add.add_argument("domain", help="Unicode or A-label form")
    add.add_argument("--project", required=True, help="UUID or short id")
    remove = command(domain, "remove", cmd_domain_remove, "unassign a domain")
    remove.add_argument("domain")
    remove.add_argument(
        "--with-addresses", action="store_true", help="also delete the domain's mail addresses"
    )
    listing = command(domain, "list", cmd_domain_list, "list hosted domains")
    listing.add_argument("--project", help="only this project's domains")

    address = commands.add_parser("address", help="mail addresses (provider switches)").add_subparsers(
        dest="address_command", required=True
    )
    receiving = command(
        address,
        "receiving",
        cmd_address_receiving,
        "switch receiving off (mail is then refused with 550 5.2.1) or on again",
    )
    receiving.add_argument("switch", choices=("disable", "enable"))
    receiving.add_argument("address", help="the mail address (any spelling) or its id")

    rate_limit = commands.add_parser("rate-limit", help="sending rate limits").add_subparsers(
        dest="rate_limit_command", required=True
    )
    approve = command(rate_limit, "approve", cmd_rate_limit_approve, "grant a mail address's pending request")
    approve.add_argument("mail_address_id")
    return parser


def _describe(error: DomainError) -> str:
    if isinstance(error, ValidationFailed):
        return "; ".join(issue.message for issue in error.issues)
    return error.message


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except DomainError as error:
        message = _describe(error)
        print(
            json.dumps({"error": error.kind.value, "message": message})
            if args.json
            else f"postwerk: {message}",
            file=sys.stderr,
        )
        return 1
    except (ValidationError, ValueError) as error:
        print(f"postwerk: invalid setting: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
