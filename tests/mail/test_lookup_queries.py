"""Every SQL query of the rendered Postfix and Dovecot configuration, run on a seeded database (SQLite and
PostgreSQL) the way the servers run it, answers what Postwerk's domain rules answer for the same input.

The servers' own key handling is reproduced here, and only that: Postfix case-folds a lookup key (full
Unicode folding when SMTPUTF8 is on) and puts it, SQL-quoted, for %s, %u (local part) and %d (domain);
Dovecot applies `auth_username_format` (`%Lu` would lower-case ASCII letters only) and puts the login for %u.
Dovecot's passdb asks Postwerk's login dictionary (`postwerk.logins`) rather than SQL: its one dict key is
answered here by that dictionary, on the same seeded database.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, bindparam, text

from postwerk.domain.addresses import parse_address, parse_domain
from postwerk.domain.delivery_quota import Found, accepted_at_any_size, expand
from postwerk.domain.rate_limits import RateLimitCatalogue
from postwerk.domain.srs import SrsKey
from postwerk.domain.submission import Account
from postwerk.dovecot_dict import unescape
from postwerk.logins.dict_server import LoginDictionary
from postwerk.mailstack.layout import (
    DISABLED_DOMAIN,
    EMBEDDED_ACCOUNTS,
    LOOP_DOMAIN,
    MAILBOX_DOMAIN,
    POSTFIX,
    Layout,
)
from postwerk.mailstack.render import postfix_maps, render
from postwerk.mailstack.tables import UTF8_KEY_FILTER_FILE, Tables
from postwerk.policy.protocol import Request
from postwerk.policy.service import ACCEPTED, FULL, PolicyService
from postwerk.service import Context, delivery_boxes, projects, provider
from postwerk.service import mail_addresses as addresses
from postwerk.service.access import ADMIN
from postwerk.settings import Settings
from postwerk.store import repository
from postwerk.store.mail_lookups import find_delivery_box_login, find_destinations, find_login
from postwerk.store.repository import Database

PASSWORD = "a long enough secret"
DOVECOT_QUERIES = ("user_query", "iterate_query")
DOVECOT_DICT_KEYS = ("passdb/%s/%u",)
_DICT_KEY = re.compile(r"^\s*key\s*=\s*(\S+)\s*$", re.MULTILINE)
_USERNAME_FORMAT = re.compile(r"^auth_username_format\s*=\s*(\S*)\s*$", re.MULTILINE)
# A value goes on over the lines that start with white space (Postfix's continuation lines).
_QUERY_LINE = re.compile(
    r"^(query|password_query|user_query|iterate_query)\s*=\s*(.+(?:\n[ \t]+.+)*)$", re.MULTILINE
)


def rendered_queries(engine: Engine, folder: Path) -> dict[str, str]:
    """Name -> SQL of every query in the configuration rendered for this database."""
    settings = Settings(
        data_dir=folder,
        database_url=engine.url.render_as_string(hide_password=False),
        mail_hostname="mx.postwerk.test",
    )
    queries: dict[str, str] = {}
    for rendered in render(settings, Layout.embedded(folder), EMBEDDED_ACCOUNTS, mail_uid=1000):
        for match in _QUERY_LINE.finditer(rendered.content):
            name = (
                rendered.path.stem.removeprefix("postwerk-") if match.group(1) == "query" else match.group(1)
            )
            assert name not in queries, f"two queries named {name}"
            queries[name] = " ".join(line.strip() for line in match.group(2).splitlines())
    return queries


def _quote(value: str) -> str:
    return value.replace("'", "''")


def postfix_key(written: str) -> str:
    return written.casefold()


def rendered_dovecot_auth(folder: Path) -> tuple[str, list[str]]:
    """The rendered `auth_username_format` and the keys of the login dictionary's configuration."""
    settings = Settings(data_dir=folder, mail_hostname="mx.postwerk.test")
    layout = Layout.embedded(folder)
    files = {f.path: f.content for f in render(settings, layout, EMBEDDED_ACCOUNTS, mail_uid=1000)}
    (username_format,) = _USERNAME_FORMAT.findall(files[layout.dovecot_conf])
    return username_format, _DICT_KEY.findall(files[layout.dovecot_logins])


def dovecot_login(written: str, username_format: str = "%u") -> str:
    """The login as Dovecot hands it on after `auth_username_format`."""
    if username_format == "%Lu":
        return "".join(c.lower() if c.isascii() else c for c in written)
    assert username_format == "%u", username_format
    return written


def dovecot_passdb(
    engine: Engine, folder: Path, written: str, service: str = "imap"
) -> dict[str, str] | None:
    """What Dovecot's dict passdb gets for a login typed as `written` on `service` (imap, pop3, or smtp for
    Postfix's submission): the rendered key, answered by Postwerk's login dictionary on this database
    (None: not found)."""
    username_format, (template,) = rendered_dovecot_auth(folder)

    def lookup(key: str) -> tuple[str, str | None] | None:
        with engine.connect() as connection:
            return find_login(connection, key)

    def box_lookup(name: str) -> tuple[Account, str | None] | None:
        with engine.connect() as connection:
            return find_delivery_box_login(connection, name)

    login = dovecot_login(written, username_format)
    key = "shared/" + template.replace("%s", service).replace("%u", login)
    reply = LoginDictionary(lookup, box_lookup=box_lookup).answer(key)
    if reply == "N\n":
        return None
    assert reply.startswith("O"), reply
    fields: dict[str, str] = json.loads(unescape(reply[1:].rstrip("\n")))
    return fields


class PostfixQuery(str):
    """A query as Postfix sends it. Postfix 3.7's pgsql client talks Latin-1 (`client_encoding` LATIN1 on
    every connection): `run` does the same with these on PostgreSQL."""


def postfix_sql(template: str, key: str) -> PostfixQuery | None:
    """The query Postfix runs for `key`, or None when Postfix would not run it (db_common_expand)."""
    local, at, domain = key.rpartition("@")
    if "%u" in template and not (at and local):
        return None
    if "%d" in template and not at:
        return None
    values = {"s": key, "u": local, "d": domain, "%": "%"}
    return PostfixQuery(re.sub(r"%([sud%])", lambda m: _quote(values[m.group(1)]), template))


def dovecot_sql(template: str, user: str) -> str:
    return re.sub(r"%([u%])", lambda m: _quote(user) if m.group(1) == "u" else "%", template)


def run(engine: Engine, sql: str | None) -> list[tuple[object, ...]]:
    if sql is None:
        return []
    if isinstance(sql, PostfixQuery) and engine.dialect.name == "postgresql":
        return _run_as_postfix_pgsql(engine, sql)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


def _run_as_postfix_pgsql(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    """Bytes as Postfix 3.7's pgsql client sends and reads them: the query's UTF-8 bytes on a LATIN1
    connection, and each answer's bytes as it receives them, read as UTF-8."""
    with engine.connect() as connection:
        connection.exec_driver_sql("SET client_encoding TO 'LATIN1'")
        try:
            rows = connection.exec_driver_sql(sql.encode().decode("latin-1")).all()
        finally:
            connection.exec_driver_sql("SET client_encoding TO 'UTF8'")
    return [tuple(v.encode("latin-1").decode() if isinstance(v, str) else v for v in row) for row in rows]


def _create_address(
    context: Context,
    project_id: str,
    address: str,
    forwards: tuple[str, ...] = (),
    *,
    mailbox: bool,
    catch_all: bool = False,
) -> str:
    box = addresses.NewMailbox(password=PASSWORD, quota_in_bytes=-1) if mailbox else None
    request = addresses.NewAddress(
        address=address, forward_addresses=forwards, is_catch_all=catch_all, mailbox=box
    )
    return addresses.create(context, ADMIN, project_id, request)


@dataclass
class Seeded:
    domain: str
    idn_domain: str
    mailboxes: dict[str, str]  # lookup key -> mailbox id
    routes: dict[str, set[str]]  # lookup key -> destinations Postfix must get
    catch_all: str
    disabled: str
    delivery_box: str


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))
    project_id, short_id = projects.create_project(context, "lookup queries")
    suffix = short_id.removeprefix("p-")
    domain, idn_domain = f"q{suffix}.example", f"пошта-{suffix}.укр"
    projects.add_domain(context, domain, project_id)
    projects.add_domain(context, idn_domain, project_id)

    create = functools.partial(_create_address, context, project_id, mailbox=True)

    def key(address: str) -> str:
        return parse_address(address).lookup_key

    box = create(f"Box@{domain}", forwards=("copy@elsewhere.example",))
    create(f"fwd@{domain}", forwards=(f"box@{domain}", "x@пример.рф"), mailbox=False)
    idn = create(f"Пошта@{idn_domain}")
    quoted = create(f"o'brien@{domain}")
    umlaut = create(f"Ärger@{domain}")
    catch_all = create(f"catchall@{domain}", catch_all=True)
    quiet = create(f"quiet@{domain}")
    provider.set_receiving(context, quiet, enabled=False)  # the provider's switch
    _, box_name = _delivery_box(context, project_id)
    mailboxes = {
        key(f"box@{domain}"): box,
        key(f"пошта@{idn_domain}"): idn,
        key(f"o'brien@{domain}"): quoted,
        key(f"ärger@{domain}"): umlaut,
        key(f"catchall@{domain}"): catch_all,
        key(f"quiet@{domain}"): quiet,
    }
    routes = {
        key(f"box@{domain}"): {f"{box}@{MAILBOX_DOMAIN}", "copy@elsewhere.example"},
        # Forwards are expanded to their final destinations in the same answer.
        key(f"fwd@{domain}"): {
            f"{box}@{MAILBOX_DOMAIN}",
            "copy@elsewhere.example",
            "x@xn--e1afmkfd.xn--p1ai",
        },
        key(f"пошта@{idn_domain}"): {f"{idn}@{MAILBOX_DOMAIN}"},
        key(f"o'brien@{domain}"): {f"{quoted}@{MAILBOX_DOMAIN}"},
        key(f"ärger@{domain}"): {f"{umlaut}@{MAILBOX_DOMAIN}"},
        key(f"catchall@{domain}"): {f"{catch_all}@{MAILBOX_DOMAIN}"},
        key(f"quiet@{domain}"): {f"{quiet}@{DISABLED_DOMAIN}"},
    }
    return Seeded(
        domain, idn_domain, mailboxes, routes, key(f"catchall@{domain}"), key(f"quiet@{domain}"), box_name
    )


def _delivery_box(context: Context, project_id: str) -> tuple[str, str]:
    box_id = delivery_boxes.create(context, ADMIN, project_id, "app", "another long secret")
    with context.db.read() as connection:
        name = connection.execute(
            text("SELECT name FROM delivery_boxes WHERE id = :id"), {"id": box_id}
        ).scalar()
    return box_id, str(name)


def spellings(address: str) -> list[str]:
    """Ways a sender or a mail client may write the same address."""
    local, _, domain = address.rpartition("@")
    parsed = parse_domain(domain)
    forms = []
    for host in (parsed.unicode, parsed.ascii, parsed.ascii.upper()):
        forms += [f"{local}@{host}", f"{local.upper()}@{host}", f"{local.capitalize()}@{host}"]
    return forms


def _driver(engine: Engine) -> str:
    return "pgsql" if engine.dialect.name == "postgresql" else "sqlite"


def test_every_query_is_covered_here(engine: Engine, tmp_path: Path) -> None:
    assert set(rendered_queries(engine, tmp_path)) == {*postfix_maps(_driver(engine)), *DOVECOT_QUERIES}
    assert tuple(rendered_dovecot_auth(tmp_path)[1]) == DOVECOT_DICT_KEYS


def test_postfix_domains(engine: Engine, seeded: Seeded, tmp_path: Path) -> None:
    query = rendered_queries(engine, tmp_path)["domains"]
    for hosted in (seeded.domain, seeded.idn_domain):
        parsed = parse_domain(hosted)
        for written in (parsed.unicode, parsed.ascii, parsed.unicode.upper(), parsed.ascii.upper()):
            assert run(engine, postfix_sql(query, postfix_key(written))) == [(parsed.ascii,)], written
    for other in ("elsewhere.example", "example", f"sub.{seeded.domain}", f"x@{seeded.domain}"):
        assert run(engine, postfix_sql(query, postfix_key(other))) == [], other


def test_postfix_routes_find_the_address_the_domain_finds(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    queries = rendered_queries(engine, tmp_path)
    for key, destinations in seeded.routes.items():
        for written in spellings(key):
            assert parse_address(written).lookup_key == key  # the domain's answer
            answer = {row[0] for row in run(engine, postfix_sql(queries["routes"], postfix_key(written)))}
            assert answer == destinations, written
            assert run(engine, postfix_sql(queries["catch_alls"], postfix_key(written))) == [], written
    for unknown in (
        f"nobody@{seeded.domain}",
        f"box@{seeded.idn_domain}",
        "box@elsewhere.example",
        f"@{seeded.domain}",
    ):
        assert run(engine, postfix_sql(queries["routes"], postfix_key(unknown))) == [], unknown


def test_postfix_mailboxes_answer_as_the_routes_or_not_at_all(
    engine: Engine, seeded: Seeded, web: Web, tmp_path: Path
) -> None:
    """The mailboxes map is a shortcut: where it answers, the routes answer the same, and it answers for
    every plain mailbox (receiving, no forwards)."""
    queries = rendered_queries(engine, tmp_path)
    keys = [*seeded.routes, *(postfix_key(written) for written in web.expected), f"nobody@{seeded.domain}"]
    answered = set()
    for key in keys:
        shortcut = run(engine, postfix_sql(queries["mailboxes"], key))
        if shortcut:
            answered.add(key)
            assert shortcut == run(engine, postfix_sql(queries["routes"], key)), key
    with engine.connect() as connection:
        plain = connection.execute(
            text(
                "SELECT a.lookup_key FROM mail_addresses a WHERE a.is_mailbox AND NOT a.receiving_disabled "
                "AND NOT EXISTS (SELECT 1 FROM forward_targets f WHERE f.address_id = a.id) "
                "AND (a.lookup_key IN :keys)"
            ).bindparams(bindparam("keys", expanding=True)),
            {"keys": keys},
        ).scalars()
        plain_keys = set(plain)
    assert plain_keys and answered == plain_keys


def _policy_answer(engine: Engine, recipient: str, size: int) -> str:
    """What Postwerk's policy service answers Postfix for this recipient at RCPT, on this database."""

    def lookup(keys: Sequence[str], domains: Sequence[str]) -> Found:
        with engine.connect() as connection:
            return find_destinations(connection, keys, domains)

    attributes = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "recipient": recipient}
    return PolicyService(lookup).decide_blocking(Request({**attributes, "size": str(size)}))


def _plain_with_room(engine: Engine, key: str, message_size: int) -> bool:
    """The domain's answer for the address this exact key finds (`accepted_at_any_size`)."""
    with engine.connect() as connection:
        destination = find_destinations(connection, [key], []).addresses.get(key)
    return destination is not None and accepted_at_any_size(destination, message_size)


def test_postfix_room_says_ok_only_where_the_policy_service_would(
    engine: Engine, seeded: Seeded, web: Web, tmp_path: Path
) -> None:
    """The room map is a shortcut past the policy service (check_recipient_access before it in main.cf):
    where it answers OK, the policy service answers OK for every size Postfix accepts; it answers OK for a
    plain mailbox with room for the largest message, spelled any way Postfix folds to its key; and it answers
    every key (DUNNO when not OK), so Postfix never asks it for the key's shorter forms."""
    query = rendered_queries(engine, tmp_path)["room"]
    limit = Settings(data_dir=tmp_path, mail_hostname="mx.postwerk.test").message_size_limit
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))
    project_id, short_id = projects.create_project(context, "room")
    domain = f"room-{short_id.removeprefix('p-')}.example"
    projects.add_domain(context, domain, project_id)
    usage = 10_000
    quotas = {  # local part -> quota (None: unlimited), each mailbox holding `usage` bytes
        "unlimited": None,
        "roomy": usage + limit,  # exactly room for the largest message
        "near": usage + limit - 1,  # room for all but the largest
        "full": usage,
        "over": usage - 1,
    }
    usages = dict.fromkeys(quotas, usage)
    # Near the end of the 64-bit range: the check must not overflow (a lookup error is a 451 in Postfix).
    quotas["vast"], usages["vast"] = 2**63 - 1, 2**63 - 2
    for local, quota in quotas.items():
        box = _create_address(context, project_id, f"{local}@{domain}", mailbox=True)
        with context.db.write() as connection:
            repository.update_address(connection, box, {"quota_bytes": quota})
            repository.update_usage(connection, {box: (usages[local], 0)}, datetime.now(UTC))
    recipients = [
        *(f"{local}@{domain}" for local in quotas),
        *seeded.routes,  # forwards, a mailbox that forwards a copy, the catch-all's own mailbox, disabled
        *web.expected,
        f"unlimited+tag@{domain}",  # a subaddress: the policy service's
        f"nobody@{seeded.domain}",  # the catch-all's
        f"nobody@{domain}",  # unknown
        "box@elsewhere.example",  # not hosted
        _nfd(f"ärger@{seeded.domain}"),  # spelled as no key: the policy service's
    ]
    answered_ok = set()
    for recipient in recipients:
        for written in {recipient, *(spellings(recipient) if "@" in recipient else ())}:
            answer = run(engine, postfix_sql(query, postfix_key(written)))
            assert answer in ([("OK",)], [("DUNNO",)]), (written, answer)
            if answer == [("OK",)]:
                answered_ok.add(parse_address(written).lookup_key)
                for size in (0, 1, limit // 2, limit):
                    assert _policy_answer(engine, written, size) == ACCEPTED, (written, size)
    with_room = {
        key
        for key in (parse_address(r).lookup_key for r in recipients)
        if _plain_with_room(engine, key, limit)
    }
    assert {f"unlimited@{domain}", f"roomy@{domain}"} <= with_room
    assert not {f"near@{domain}", f"full@{domain}", f"over@{domain}"} & with_room
    assert answered_ok == with_room
    # The division of labour at the edge: a mailbox with room for all but the largest message is the
    # policy service's, which weighs the announced size.
    assert _policy_answer(engine, f"near@{domain}", limit - 1) == ACCEPTED
    assert _policy_answer(engine, f"near@{domain}", limit) == FULL


def test_a_domain_with_a_sharp_s_is_never_taken_for_its_ascii_twin(engine: Engine, tmp_path: Path) -> None:
    """Postfix asks for `groß@straße.example` written in UTF-8 as `gross@strasse.example`, which is also
    how it asks for that address at the other domain, `strasse.example`. The maps answer by the A-label of
    the hosted ß domain and never for the folded key: mail for the twin (sent by a customer, forwarded) must
    leave, not land in the hosted domain (migration 0015)."""
    queries = rendered_queries(engine, tmp_path)
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))
    project_id, short_id = projects.create_project(context, "sharp s")
    sharp = parse_domain(f"straße-{short_id.removeprefix('p-')}.example")
    projects.add_domain(context, sharp.unicode, project_id)
    box = _create_address(context, project_id, f"Groß@{sharp.unicode}", mailbox=True)
    _create_address(context, project_id, f"alle@{sharp.unicode}", mailbox=True, catch_all=True)
    destination = [(f"{box}@{MAILBOX_DOMAIN}",)]
    for written in (f"groß@{sharp.ascii}", f"GROSS@{sharp.ascii}", f"Groß@{sharp.ascii.upper()}"):
        key = postfix_key(written)
        assert run(engine, postfix_sql(queries["routes"], key)) == destination, written
        assert run(engine, postfix_sql(queries["room"], key)) == [("OK",)], written
    assert run(engine, postfix_sql(queries["domains"], sharp.ascii)) == [(sharp.ascii,)]
    twin = sharp.folded  # strasse-….example: another domain, not hosted here
    assert twin.isascii() and twin != sharp.ascii
    for key in (f"gross@{twin}", f"nobody@{twin}"):
        assert run(engine, postfix_sql(queries["routes"], key)) == [], key
        assert run(engine, postfix_sql(queries["room"], key)) == [("DUNNO",)], key
    assert run(engine, postfix_sql(queries["domains"], twin)) == []
    assert run(engine, postfix_sql(queries["catch_alls"], f"@{twin}")) == []


def test_postfix_catch_all_answers_only_for_its_domain_key(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    query = rendered_queries(engine, tmp_path)["catch_alls"]
    parsed = parse_domain(seeded.domain)
    for written in (f"@{parsed.ascii}", f"@{parsed.ascii.upper()}"):
        assert run(engine, postfix_sql(query, postfix_key(written))) == [(seeded.catch_all,)]
    for written in (f"nobody@{seeded.domain}", f"@{seeded.idn_domain}", "@elsewhere.example"):
        assert run(engine, postfix_sql(query, postfix_key(written))) == [], written


def test_dovecot_logins_find_the_mailbox_the_domain_finds(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    queries = rendered_queries(engine, tmp_path)
    for key, mailbox_id in seeded.mailboxes.items():
        local, _, domain = key.rpartition("@")
        parsed = parse_domain(domain)
        for host in (parsed.unicode, parsed.ascii, parsed.ascii.upper()):
            # Capitals (ASCII or not) and decomposed letters: the domain's rule, which Dovecot's %L is not.
            for written in (
                f"{local.upper()}@{host}",
                f"{local.capitalize()}@{host}",
                unicodedata.normalize("NFD", f"{local.upper()}@{host}"),
            ):
                assert parse_address(written).lookup_key == key
                fields = dovecot_passdb(engine, tmp_path, written)
                assert fields is not None and fields["user"] == mailbox_id, written
                assert fields["password"].startswith("{ARGON2ID}$argon2id$")
        assert run(engine, dovecot_sql(queries["user_query"], mailbox_id)) == [(mailbox_id,)]
    for login in (
        f"fwd@{seeded.domain}",
        seeded.delivery_box,
        f"nobody@{seeded.domain}",
        next(iter(seeded.mailboxes.values())),
    ):
        assert dovecot_passdb(engine, tmp_path, login) is None, login
    everyone = {row[0] for row in run(engine, queries["iterate_query"])}
    assert set(seeded.mailboxes.values()) <= everyone


def test_delivery_boxes_log_in_on_smtp_submission_only(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    ((box_id,),) = run(engine, f"SELECT id FROM delivery_boxes WHERE name = '{seeded.delivery_box}'")
    fields = dovecot_passdb(engine, tmp_path, seeded.delivery_box, "smtp")
    assert fields is not None and fields["user"] == box_id
    assert fields["password"].startswith("{ARGON2ID}$argon2id$")
    for service in ("imap", "pop3"):
        assert dovecot_passdb(engine, tmp_path, seeded.delivery_box, service) is None, service
    # A mailbox logs in on submission as on IMAP: user = its id, whatever the spelling.
    for key, mailbox_id in seeded.mailboxes.items():
        fields = dovecot_passdb(engine, tmp_path, key.upper(), "smtp")
        assert fields is not None and fields["user"] == mailbox_id, key


@pytest.mark.parametrize(
    "case",
    [
        "dovecot-capitals",
        "dovecot-nfd",
        "postfix-nfd",
    ],
)
def test_what_the_servers_cannot_fold(engine: Engine, seeded: Seeded, tmp_path: Path, case: str) -> None:
    queries = rendered_queries(engine, tmp_path)
    key = f"ärger@{seeded.domain}"
    if case.startswith("dovecot"):
        written = f"ÄRGER@{seeded.domain}"
        if case == "dovecot-nfd":
            written = unicodedata.normalize("NFD", written)
        assert parse_address(written).lookup_key == key
        fields = dovecot_passdb(engine, tmp_path, written)
        assert fields is not None and fields["user"] == seeded.mailboxes[key]
    else:
        written = unicodedata.normalize("NFD", key)
        assert parse_address(written).lookup_key == key
        # Postfix case-folds an envelope address but does not normalise it to NFC: the SQL maps, which
        # compare keys as they are, do not find it; the last map, Postwerk's address-key, answers the key,
        # which Postfix expands again through the routes.
        assert run(engine, postfix_sql(queries["routes"], postfix_key(written))) == []
        canonical = _tables(engine).lookup("address-key", postfix_key(written))
        assert canonical == key
        answer = {row[0] for row in run(engine, postfix_sql(queries["routes"], canonical))}
        assert answer == seeded.routes[key]


def _tables(engine: Engine) -> Tables:
    return Tables(Database(engine), SrsKey(b"k" * 32), "mx.postwerk.test")


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_postwerk_answers_utf8_spellings_after_the_sql_maps_and_only_for_what_exists(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    alias_maps = rendered_main_cf(tmp_path, "virtual_alias_maps", "")
    alias_domains = rendered_main_cf(tmp_path, "virtual_alias_domains", "")
    # Last: every SQL map (the catch-all's too) is asked first, for every key Postfix tries.
    assert alias_maps.endswith(":address-key }")
    assert alias_maps.index("routes") < alias_maps.index("catch_alls") < alias_maps.index(":address-key")
    assert alias_domains.endswith(":domain-key }")
    tables = _tables(engine)
    domain = seeded.domain
    key = f"ärger@{domain}"
    answers = {
        _nfd(f"ÄRGER@{domain}"): key,
        # Postfix asks a pattern table for the address as given only: ärger@ is found from the answer.
        _nfd(f"Ärger+tag@{domain}"): f"ärger+tag@{domain}",
        _nfd(f"nöbody@{domain}"): None,  # no such address: the catch-all takes it, as when composed
        _nfd(f"nöbody+ärger@{domain}"): None,
        key: None,  # as the routes find it: never answered with itself
        f"ärger+tag@{domain}": None,  # composed: Postfix finds ärger@ without the extension itself
        f"box@{domain}": None,
        f"@{domain}": None,
        "not an address": None,
    }
    for recipient, answer in answers.items():
        assert tables.lookup("address-key", postfix_key(recipient)) == answer, recipient
    idn = parse_domain(seeded.idn_domain)
    for written, ascii_name in (
        (idn.unicode.upper(), idn.ascii),
        (idn.ascii, None),
        (domain, None),
        (_nfd("bücher.example"), None),  # not hosted
        ("not a domain", None),
    ):
        assert tables.lookup("domain-key", written) == ascii_name, written


def test_only_utf8_keys_reach_postwerks_socketmap(tmp_path: Path) -> None:
    """The rendered filter in front of address-key and domain-key, as Postfix reads it (postmap)."""
    postmap = POSTFIX.parent / "postmap"
    if not postmap.exists():
        pytest.skip("Postfix is not installed")
    config = tmp_path / "postfix"
    config.mkdir()
    (config / "main.cf").write_text("compatibility_level = 3.6\nsmtputf8_enable = yes\n")
    (regexp,) = (
        f
        for f in render(
            Settings(data_dir=tmp_path, mail_hostname="mx.postwerk.test"),
            Layout.embedded(tmp_path),
            EMBEDDED_ACCOUNTS,
            mail_uid=1000,
        )
        if f.path.name == UTF8_KEY_FILTER_FILE
    )
    (config / "filter.regexp").write_text(regexp.content)

    def passed(key: str) -> bool:
        command = [str(postmap), "-c", str(config), "-q", key, f"regexp:{config / 'filter.regexp'}"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode in (0, 1), result.stderr
        return result.returncode == 0 and result.stdout.strip() == key

    for key in (_nfd("ärger@example.org"), "пошта@example.org", "x@bücher.example", _nfd("bücher.example")):
        assert passed(key), key
    for key in (
        "box@example.org",
        f"{uuid.uuid4()}@{MAILBOX_DOMAIN}",
        "@bücher.example",
        "example.org",
        "xn--bcher-kva.example",
    ):
        assert not passed(key), key


# --- forwarding webs: the routes answer final destinations, as the domain expands them --------------------

LOOP = "<loop>"


@dataclass
class Web:
    domain: str  # has a catch-all
    bare_domain: str  # has none
    expected: dict[str, set[str]]  # recipient as written -> final destinations (LOOP for a loop)


@pytest.fixture
def web(engine: Engine) -> Web:
    context = Context(Database(engine), RateLimitCatalogue.from_values([100], 100))
    project_id, short_id = projects.create_project(context, "forwarding web")
    suffix = short_id.removeprefix("p-")
    domain, bare, idn = f"w{suffix}.example", f"bare-{suffix}.example", f"мережа-{suffix}.укр"
    for name in (domain, bare, idn):
        projects.add_domain(context, name, project_id)

    create = functools.partial(_create_address, context, project_id, mailbox=False)

    def box(address_id: str) -> str:
        return f"{address_id}@{MAILBOX_DOMAIN}"

    # A loop that leaves a copy outside; two mailboxes that forward a copy to each other; a pure loop.
    create(f"ping@{domain}", (f"pong@{domain}", "outside-copy@elsewhere.example"))
    create(f"pong@{domain}", (f"ping@{domain}",))
    mutual_a = create(f"mutual-a@{domain}", (f"mutual-b@{domain}",), mailbox=True)
    mutual_b = create(f"mutual-b@{domain}", (f"mutual-a@{domain}",), mailbox=True)
    create(f"circle-1@{domain}", (f"circle-2@{domain}",))
    create(f"circle-2@{domain}", (f"circle-3@{domain}",))
    create(f"circle-3@{domain}", (f"Circle-1@{domain.upper()}",))
    # Precedence of a forward target: exact, then without +extension, then the catch-all.
    catcher = create(f"catcher@{domain}", (f"again@{domain}",), mailbox=True, catch_all=True)
    bob = create(f"bob@{domain}", mailbox=True)
    bob_news = create(f"bob+news@{domain}", mailbox=True)
    create(f"to-tag@{domain}", (f"bob+other@{domain}", f"bob+news@{domain}"))
    create(f"to-catch@{domain}", (f"nobody@{domain}",))
    create(f"to-unknown@{domain}", (f"nobody@{bare}",))
    # A diamond, a chain out of the installation, a disabled target, an internationalised target.
    bottom = create(f"bottom@{bare}", mailbox=True)
    create(f"left@{bare}", (f"bottom@{bare}",))
    create(f"right@{bare}", (f"bottom@{bare}", f"left@{bare}"))
    create(f"top@{bare}", (f"left@{bare}", f"right@{bare}"))
    end = create(f"end@{bare}", ("far@elsewhere.example",), mailbox=True)
    create(f"middle@{bare}", (f"end@{bare}",))
    create(f"start@{bare}", (f"middle@{bare}",))
    quiet = create(f"quiet@{bare}", (f"bottom@{bare}",), mailbox=True)
    provider.set_receiving(context, quiet, enabled=False)
    create(f"to-quiet@{bare}", (f"quiet@{bare}", f"bottom@{bare}"))
    idn_box = create(f"Пошта@{idn}", (f"ping@{domain}",), mailbox=True)
    create(f"to-idn@{bare}", (f"пошта@{parse_domain(idn).ascii}",))
    create(f"to-list@{bare}", ("friend+lists@elsewhere.example",))

    expected = {
        f"ping@{domain}": {"outside-copy@elsewhere.example"},
        f"PONG@{domain}": {"outside-copy@elsewhere.example"},
        f"mutual-a@{domain}": {box(mutual_a), box(mutual_b)},
        f"mutual-b+x@{domain}": {box(mutual_a), box(mutual_b)},
        f"circle-2@{domain}": {LOOP},
        f"circle-1+tag@{domain}": {LOOP},
        f"to-tag@{domain}": {box(bob), box(bob_news)},
        f"to-catch@{domain}": {box(catcher)},
        f"whoever@{domain}": {box(catcher)},  # the catch-all itself, forwarding into itself
        f"to-unknown@{domain}": {f"nobody@{bare}"},
        f"top@{bare}": {box(bottom)},
        f"start@{bare}": {box(end), "far@elsewhere.example"},
        f"to-quiet@{bare}": {f"{quiet}@{DISABLED_DOMAIN}", box(bottom)},
        f"to-idn@{bare}": {box(idn_box), "outside-copy@elsewhere.example"},
        # An unmatched +extension of the recipient reaches the targets as configured, never appended.
        f"ping+tag@{domain}": {"outside-copy@elsewhere.example"},
        f"start+tag@{bare}": {box(end), "far@elsewhere.example"},
        f"to-list+news@{bare}": {"friend+lists@elsewhere.example"},
        f"пошта@{idn}": {box(idn_box), "outside-copy@elsewhere.example"},
    }
    return Web(domain, bare, expected)


def rendered_main_cf(folder: Path, parameter: str, default: str, database_url: str | None = None) -> str:
    """A parameter of the rendered main.cf (the last assignment, as Postfix reads it), else its default."""
    settings = Settings(data_dir=folder, mail_hostname="mx.postwerk.test", database_url=database_url)
    (main_cf,) = (
        f.content
        for f in render(settings, Layout.embedded(folder), EMBEDDED_ACCOUNTS, mail_uid=1000)
        if f.path.name == "main.cf"
    )
    values = re.findall(rf"^{parameter}[ \t]*=[ \t]*(.*)$", main_cf, re.MULTILINE)
    return str(values[-1]) if values else default


def postfix_destinations(
    engine: Engine, queries: dict[str, str], written: str, *, propagate_extension: bool = False
) -> set[str]:
    """What Postfix's virtual alias expansion makes of a recipient: the routes by the exact key, then
    without the +extension, then the catch-all's address routed again; loop routes as LOOP. With
    `propagate_extension` (main.cf's propagate_unmatched_extensions naming `virtual`), an extension that
    only the exact key held is appended to every answer, as Postfix does."""
    key = postfix_key(written)
    local, _, domain = key.rpartition("@")
    candidates = [key]
    cut = local.find("+", 1)
    extension = ""
    if cut > 0:
        candidates.append(f"{local[:cut]}@{domain}")
        extension = local[cut:]
    rows: list[tuple[object, ...]] = []
    for candidate in candidates:
        # Map by map, as main.cf lists them: plain mailboxes first, then the routes.
        rows = run(engine, postfix_sql(queries["mailboxes"], candidate)) or run(
            engine, postfix_sql(queries["routes"], candidate)
        )
        if rows:
            unmatched = candidate != key
            break
    else:
        unmatched = True
        catch_all = run(engine, postfix_sql(queries["catch_alls"], f"@{domain}"))
        if catch_all:
            catcher = str(catch_all[0][0])
            rows = run(engine, postfix_sql(queries["mailboxes"], catcher)) or run(
                engine, postfix_sql(queries["routes"], catcher)
            )
    answer = [str(row[0]) for row in rows]
    if propagate_extension and unmatched and extension:
        answer = [value.replace("@", extension + "@", 1) for value in answer]
    assert len(answer) == len(set(answer)), f"{written}: a destination twice in {answer}"
    return {LOOP if value.endswith(f"@{LOOP_DOMAIN}") else value for value in answer}


def domain_destinations(engine: Engine, written: str) -> set[str]:
    def lookup(keys: Sequence[str], domain_names: Sequence[str]) -> Found:
        with engine.connect() as connection:
            return find_destinations(connection, keys, domain_names)

    expansion = expand(written, lookup)
    if expansion.is_loop:
        return {LOOP}
    return {
        *(f"{mailbox_id}@{MAILBOX_DOMAIN}" for mailbox_id in expansion.mailboxes),
        *(f"{address_id}@{DISABLED_DOMAIN}" for address_id in expansion.disabled),
        *expansion.outside,
    }


def test_routes_answer_every_final_destination_as_the_domain_expands(
    engine: Engine, web: Web, tmp_path: Path
) -> None:
    queries = rendered_queries(engine, tmp_path)
    propagation = rendered_main_cf(tmp_path, "propagate_unmatched_extensions", "canonical, virtual")
    propagate = "virtual" in propagation
    for written, expected in web.expected.items():
        answer = postfix_destinations(engine, queries, written, propagate_extension=propagate)
        assert answer == expected, written
        assert domain_destinations(engine, written) == expected, written
        # Final: Postfix, which re-expands every answer, finds nothing more for any of them.
        for destination in expected - {LOOP}:
            assert run(engine, postfix_sql(queries["routes"], postfix_key(destination))) == [], destination
            domain = destination.rpartition("@")[2]
            assert run(engine, postfix_sql(queries["catch_alls"], f"@{domain}")) == [], destination
    for unknown in (f"nobody@{web.bare_domain}", "ping@elsewhere.example"):
        assert postfix_destinations(engine, queries, unknown) == set(), unknown
        assert domain_destinations(engine, unknown) == set(), unknown


def _four_maps(engine: Engine, queries: dict[str, str], key: str) -> list[tuple[object, ...]]:
    """What the maps mailboxes, routes, postmaster and catch_alls answer for `key` one after the other, as
    Postfix asks them on SQLite (routes and postmaster behind their domain guards)."""
    local, at, domain = key.rpartition("@")
    hosted = bool(at) and bool(run(engine, postfix_sql(queries["domains"], domain)))
    rows = run(engine, postfix_sql(queries["mailboxes"], key))
    if not rows and local and hosted:
        rows = run(engine, postfix_sql(queries["routes"], key))
    if not rows and local and (hosted or domain == "mx.postwerk.test"):
        rows = run(engine, postfix_sql(queries["postmaster"], key))
    return sorted(rows or run(engine, postfix_sql(queries["catch_alls"], key)), key=str)


def test_postgres_recipients_answer_as_the_four_maps(
    engine: Engine, seeded: Seeded, web: Web, tmp_path: Path
) -> None:
    """PostgreSQL's one recipient map (postwerk_recipient, migration 0012) gives every key the answer the four
    maps give it on SQLite, and takes their place in virtual_alias_maps."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the recipients map is PostgreSQL's")
    url = engine.url.render_as_string(hide_password=False)
    alias_maps = rendered_main_cf(tmp_path, "virtual_alias_maps", "", url)
    assert "recipients" in alias_maps and alias_maps.index("recipients") < alias_maps.index(":address-key")
    assert not any(name in alias_maps for name in ("mailboxes", "routes", "postmaster", "catch_alls"))
    queries = rendered_queries(engine, tmp_path)
    domains = [seeded.domain, seeded.idn_domain, web.bare_domain, "mx.postwerk.test", "elsewhere.example"]
    keys = {
        *(postfix_key(written) for key in seeded.routes for written in spellings(key)),
        *(postfix_key(written) for written in web.expected),
        *(key for destinations in seeded.routes.values() for key in destinations),
        *(f"{local}@{domain}" for local in ("postmaster", "nobody", "box") for domain in domains),
        *(f"@{domain}" for domain in domains),
        *(postfix_key(f"@{domain}") for domain in (parse_domain(seeded.idn_domain).unicode,)),
        "no-domain",
        "@",
    }
    answered = 0
    for key in sorted(keys):
        expected = _four_maps(engine, queries, key)
        assert sorted(run(engine, postfix_sql(queries["recipients"], key)), key=str) == expected, key
        answered += bool(expected)
    assert answered >= 20  # many keys are found: the comparison is not of empty answers


@pytest.mark.parametrize("key", ["box@plans.example", "пошта@plans.example", "@plans.example"])
def test_postgres_lookups_probe_indexes(engine: Engine, tmp_path: Path, key: str) -> None:
    """Every Postfix query, as PostgreSQL plans it for Postfix's Latin-1 connection, finds addresses by an
    index: a key expression whose collation no index has (convert_from's is "C") would scan every address
    on every lookup."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the plans of PostgreSQL")
    for name, template in rendered_queries(engine, tmp_path).items():
        sql = postfix_sql(template, postfix_key(key)) if name in postfix_maps("pgsql") else None
        if sql is None:
            continue
        with engine.connect() as connection:
            connection.exec_driver_sql("SET client_encoding TO 'LATIN1'")
            connection.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: what can the plan be
            try:
                plan = " ".join(
                    str(row[0])
                    for row in connection.exec_driver_sql("EXPLAIN " + sql.encode().decode("latin-1"))
                )
            finally:
                connection.exec_driver_sql("RESET enable_seqscan")
                connection.exec_driver_sql("SET client_encoding TO 'UTF8'")
        assert "Seq Scan on mail_addresses" not in plan, (name, plan)
