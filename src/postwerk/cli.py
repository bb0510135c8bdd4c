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
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from postwerk.bootstrap import build_context, ensure_first_admin_token
from postwerk.domain.errors import DomainError, ValidationFailed
from postwerk.service import Context, projects
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import ADMIN
from postwerk.settings import Settings, load_settings, split_host_port
from postwerk.store.repository import Page, Sorting

if TYPE_CHECKING:
    from postwerk.mailstack.layout import Layout

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
    "submission",
    "submissions",
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


# What the DNS records of hosted domains name (the mail-domains route of `serve`, `domain records`).
_PUBLIC_FLAGS = ("mail_hostname", "public_hostname", "public_ipv4", "public_ipv6")


def _public_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in _PUBLIC_FLAGS}


class _Terminated(Exception):
    """SIGTERM: unwind like Ctrl-C, so the mail servers are stopped on the way out."""


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise _Terminated


def _wait_for_termination() -> None:
    with contextlib.suppress(KeyboardInterrupt, _Terminated):
        threading.Event().wait()


def _log_to_stderr(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _system_layout(settings: Settings) -> Layout:
    """The layout of `config render` and `mail-services`: Debian's Postfix and Dovecot, system-wide."""
    from postwerk.mailstack.layout import Layout

    return Layout.system(settings.data_dir, settings.tls_cert, settings.tls_key, settings.mail_services_dir)


def cmd_serve(args: argparse.Namespace) -> int:
    from postwerk.mailstack.permissions import MailSetupError
    from postwerk.mailstack.stack import MailStack

    settings = _settings(
        args, api=args.api, log_level=args.log_level, **{**_public_settings(args), **_mail_settings(args)}
    )
    _log_to_stderr(settings)
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
                f"postwerk: mail servers up: SMTP (MX) {settings.smtp}, submission {settings.submission}"
                f" (STARTTLS), submissions {settings.submissions} (TLS), IMAP {settings.imap} (STARTTLS), "
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
    from postwerk.mailstack.layout import SYSTEM_ACCOUNTS
    from postwerk.mailstack.permissions import MailSetupError
    from postwerk.mailstack.render import render
    from postwerk.mailstack.stack import mail_uid, write_files

    settings = _settings(args, **_mail_settings(args))
    if not settings.effective_database_url.startswith(("postgresql", "postgres")):
        raise ValueError(
            "the system-wide layout reads PostgreSQL: give --database-url postgresql://... "
            "(the embedded SQLite database is for `postwerk serve`'s own mail servers)"
        )
    layout = _system_layout(settings)
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

    from postwerk.mailstack.layout import SYSTEM_ACCOUNTS
    from postwerk.mailstack.permissions import MailSetupError
    from postwerk.mailstack.stack import READY_TIMEOUT, MailStack
    from postwerk.mailstack.supervisor import Supervisor

    settings = _settings(args, log_level=args.log_level, **_mail_settings(args))
    _log_to_stderr(settings)
    if os.geteuid() != 0:
        print(
            "postwerk: mail-services needs root (sockets for the mail servers' groups; the sweep removes"
            " the mail storage user's folders)",
            file=sys.stderr,
        )
        return 1
    layout = _system_layout(settings)
    stack = MailStack(settings, SYSTEM_ACCOUNTS, layout)
    supervisor = Supervisor(stack.services())
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        supervisor.start()
        deadline = time.monotonic() + READY_TIMEOUT
        stack.wait_for_services(deadline)
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


def _records_table(records: dict[str, Any]) -> str:
    lines = [f"{records['domain']} ({records['asciiDomain']}): publish these records in its zone"]
    for key in records["dkimKeys"]:
        lines.append(f"  DKIM key {key['selector']} ({key['algorithm']}, {key['status']})")
    for record in records["records"]:
        lines.append("")
        lines.append(f"{record['purpose'].upper():<10} {record['type']:<5} {record['name']}")
        details = [f"{field} {record[field]}" for field in ("priority", "weight", "port") if field in record]
        lines.append(f"  value: {record['value']}" + (f"  ({', '.join(details)})" if details else ""))
        if "note" in record:
            lines.append(f"  note:  {record['note']}")
    lines.append("")
    lines.append("As zone-file lines:")
    lines.extend(record["zone"] for record in records["records"])
    return "\n".join(lines)


def cmd_domain_records(args: argparse.Namespace) -> int:
    from postwerk.service.dkim import domain_records

    context = build_context(_settings(args, **_public_settings(args)))
    records = domain_records(context, args.domain).as_dict()
    if args.json:
        records["dkimKeys"] = [
            {**key, "createdAt": key["createdAt"].isoformat()} for key in records["dkimKeys"]
        ]
    _emit(args, records, "" if args.json else _records_table(records))
    return 0


def cmd_dkim_rotate(args: argparse.Namespace) -> int:
    from postwerk.service.dkim import rotate

    key = rotate(_context(args), args.domain, prepare=args.prepare)
    if key.status == "next":
        text = (
            f"prepared DKIM key {key.selector} for {args.domain}: publish its record (`postwerk domain"
            f" records {args.domain}`), wait until DNS serves it, then run `postwerk domain dkim rotate"
            f" {args.domain}`"
        )
    else:
        text = (
            f"DKIM key {key.selector} signs {args.domain}'s mail from now on (publish its record now if it is"
            " not yet); the previous key is retired but stays listed: a week from now, `postwerk domain dkim"
            " remove` it and delete its record"
        )
    _emit(args, {"domain": args.domain, "selector": key.selector, "status": key.status}, text)
    return 0


def cmd_dkim_remove(args: argparse.Namespace) -> int:
    from postwerk.service.dkim import remove_key

    remove_key(_context(args), args.domain, args.selector)
    _emit(
        args,
        {"domain": args.domain, "removed": args.selector},
        f"removed DKIM key {args.selector} of {args.domain}: delete its record from the zone",
    )
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


def cmd_sending(args: argparse.Namespace) -> int:
    from postwerk.service import provider

    context = _context(args)
    enabled = args.switch == "resume"
    if args.mailbox is not None:
        result = provider.set_mailbox_sending(context, args.mailbox, enabled=enabled)
    elif args.delivery_box is not None:
        result = provider.set_delivery_box_sending(context, args.delivery_box, enabled=enabled)
    else:
        result = provider.set_project_sending(context, args.project, enabled=enabled)
    kind = {"mailbox": "mailbox", "deliveryBox": "delivery box", "project": "project"}[result.kind]
    state = "resumed" if result.sending_enabled else "suspended"
    _emit(
        args,
        {"kind": result.kind, "id": result.id, "name": result.name, "sendingEnabled": result.sending_enabled},
        f"sending {state} for {kind} {result.name} ({result.id})",
    )
    return 0


def _postfix_queue(args: argparse.Namespace) -> Any:
    from postwerk.mailstack.layout import Layout
    from postwerk.mailstack.queue import PostfixQueue

    if args.postfix_config:
        return PostfixQueue(Path(args.postfix_config))
    return PostfixQueue(Layout.embedded(_settings(args).data_dir).postfix_config)


def _queued(args: argparse.Namespace) -> list[Any]:
    """The queued messages the command's `--sender` selects (all without one)."""
    from postwerk.domain.queue import by_sender, sender_filter

    key = None if args.sender is None else sender_filter(args.sender)
    return by_sender(_postfix_queue(args).messages(), key)


def _queue_item(message: Any) -> dict[str, Any]:
    return {
        "id": message.queue_id,
        "queue": message.queue_name,
        "arrivalTime": message.arrival_time.isoformat(),
        "size": message.size,
        "sender": message.sender,
        "recipients": [{"address": r.address, "delayReason": r.delay_reason} for r in message.recipients],
    }


def _queue_table(items: list[dict[str, Any]]) -> str:
    if not items:
        return "the queue is empty"
    lines = [f"{'ID':<14} {'QUEUE':<9} {'ARRIVED (UTC)':<19} {'SIZE':>9}  SENDER -> RECIPIENTS"]
    for item in items:
        arrived = item["arrivalTime"][:19].replace("T", " ")
        sender = item["sender"] or "<>"
        lines.append(f"{item['id']:<14} {item['queue']:<9} {arrived:<19} {item['size']:>9}  {sender}")
        for recipient in item["recipients"]:
            reason = f"  ({recipient['delayReason']})" if recipient["delayReason"] else ""
            lines.append(f"{'':<56}-> {recipient['address']}{reason}")
    return "\n".join(lines)


def _queue_command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from postwerk.mailstack.queue import QueueError

        try:
            return run(args)
        except QueueError as error:
            print(
                json.dumps({"error": "queue", "message": str(error)}) if args.json else f"postwerk: {error}",
                file=sys.stderr,
            )
            return 1

    return handler


@_queue_command
def cmd_queue_list(args: argparse.Namespace) -> int:
    items = [_queue_item(message) for message in _queued(args)]
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
    else:
        print(_queue_table(items))
    return 0


@_queue_command
def cmd_queue_flush(args: argparse.Namespace) -> int:
    queue = _postfix_queue(args)
    if args.sender is None:
        queue.flush()
        _emit(args, {"flushed": "all"}, "retrying all deferred mail now")
        return 0
    ids = [message.queue_id for message in _queued(args) if message.queue_name == "deferred"]
    queue.flush(ids)
    _emit(args, {"flushed": ids}, f"retrying {len(ids)} deferred message(s) from {args.sender} now")
    return 0


@_queue_command
def cmd_queue_delete(args: argparse.Namespace) -> int:
    queue = _postfix_queue(args)
    if args.all:
        deleted = queue.delete_all()
        _emit(args, {"deleted": deleted}, f"deleted {deleted} message(s): the queue is empty")
        return 0
    ids = [message.queue_id for message in _queued(args)]
    deleted = queue.delete(ids)
    _emit(
        args,
        {"deleted": deleted, "ids": ids},
        f"deleted {deleted} message(s) from {args.sender} (no bounce is sent)",
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
        "--submission",
        help="HOST:PORT of SMTP submission with STARTTLS and AUTH (env POSTWERK_SUBMISSION, default"
        " 127.0.0.1:5870; production: 0.0.0.0:587)",
    )
    mail.add_argument(
        "--submissions",
        help="HOST:PORT of SMTP submission over TLS with AUTH (env POSTWERK_SUBMISSIONS, default"
        " 127.0.0.1:4650; production: 0.0.0.0:465)",
    )
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


def _public_arguments(parser: argparse.ArgumentParser, *, with_mail_hostname: bool) -> None:
    public = parser.add_argument_group("DNS records of hosted domains")
    if with_mail_hostname:
        public.add_argument(
            "--mail-hostname",
            help="name the mail servers announce (env POSTWERK_MAIL_HOSTNAME, default: host name)",
        )
    public.add_argument(
        "--public-hostname",
        help="host name the world reaches the mail servers by, named by the MX, SRV and autoconfig records"
        " (env POSTWERK_PUBLIC_HOSTNAME, default: the mail hostname)",
    )
    public.add_argument(
        "--public-ipv4", help="public IPv4 address mail leaves from, for SPF (env POSTWERK_PUBLIC_IPV4)"
    )
    public.add_argument(
        "--public-ipv6", help="public IPv6 address mail leaves from, for SPF (env POSTWERK_PUBLIC_IPV6)"
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
    _public_arguments(serve, with_mail_hostname=False)

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
    records = command(
        domain,
        "records",
        cmd_domain_records,
        "the DNS records the domain's owner publishes: MX, SPF, DKIM, DMARC, SRV, autoconfig",
    )
    records.add_argument("domain", help="Unicode or A-label form")
    _public_arguments(records, with_mail_hostname=True)
    dkim = domain.add_parser("dkim", help="DKIM keys of a domain").add_subparsers(
        dest="dkim_command", required=True
    )
    rotate = command(
        dkim,
        "rotate",
        cmd_dkim_rotate,
        "a new key pair and selector signs from now on; the previous key is retired but stays listed",
    )
    rotate.add_argument("domain")
    rotate.add_argument(
        "--prepare",
        action="store_true",
        help="only list the new key (publish its record first); the next `rotate` makes it sign",
    )
    dkim_remove = command(
        dkim, "remove", cmd_dkim_remove, "remove a retired (or prepared) key, and so its record from the list"
    )
    dkim_remove.add_argument("domain")
    dkim_remove.add_argument("selector", help="as `domain records` lists it, e.g. pw202611")

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

    sending = command(
        commands,
        "sending",
        cmd_sending,
        "suspend or resume sending (submission answers 550 5.7.1) of a mailbox, a delivery box, or a whole"
        " project (its accounts created later too); receiving is not affected",
    )
    sending.add_argument("switch", choices=("suspend", "resume"))
    which = sending.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--mailbox", help="the mailbox's address (any spelling) or id; sets its sendingEnabled"
    )
    which.add_argument(
        "--delivery-box", help="the delivery box's name (its login) or id; sets its sendingEnabled"
    )
    which.add_argument(
        "--project", help="UUID or short id; a flag of the project, separate from the accounts'"
    )

    queue = commands.add_parser("queue", help="Postwerk's Postfix mail queue").add_subparsers(
        dest="queue_command", required=True
    )

    def queue_command(name: str, handler: Callable[[argparse.Namespace], int], help_: str) -> Any:
        sub = command(queue, name, handler, help_)
        sub.add_argument(
            "--postfix-config",
            help="Postfix configuration folder of the instance (default: the data folder's, as `serve` runs"
            " it; /etc/postfix for the system-wide layout)",
        )
        return sub

    sender_help = (
        "only mail with this envelope sender (exact address, any case, either form of an IDN domain;"
        " <> for the null sender)"
    )
    queue_list = queue_command("list", cmd_queue_list, "list queued mail (a table, or --json)")
    queue_list.add_argument("--sender", help=sender_help)
    queue_flush = queue_command(
        "flush", cmd_queue_flush, "retry deferred mail now: all of it, or only --sender's"
    )
    queue_flush.add_argument("--sender", help=sender_help)
    queue_delete = queue_command(
        "delete", cmd_queue_delete, "delete queued mail without bouncing it: --sender's, or --all"
    )
    victims = queue_delete.add_mutually_exclusive_group(required=True)
    victims.add_argument("--sender", help=sender_help)
    victims.add_argument("--all", action="store_true", help="every queued message")

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
