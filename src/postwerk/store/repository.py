"""Queries, one function per question the services ask. All take an open connection; the caller owns the
transaction (see `Database`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    ColumnElement,
    Connection,
    Engine,
    Row,
    Text,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import column as table_column
from sqlalchemy.exc import DBAPIError, IntegrityError

from postwerk.domain.addresses import DomainName
from postwerk.store.address_document import MAIL_ADDRESS_DOCUMENT
from postwerk.store.db import READ_OPTION, WRITE_OPTION
from postwerk.store.driver_queries import driver_rows
from postwerk.store.tables import (
    UtcDateTime,
    api_tokens,
    deleted_mailboxes,
    delivery_boxes,
    domains,
    forward_targets,
    mail_addresses,
    projects,
    sender_rules,
)

T = TypeVar("T")


class Database:
    """Short units of work: `read()` for queries, `write()` for changes.

    Reads run without an explicit transaction (each statement sees committed data): no BEGIN and no
    ROLLBACK round trips on PostgreSQL, no transaction bookkeeping on SQLite. Writes are transactions
    (on SQLite they take the write lock up front, see `store.db`).

    `reads_inline`: SQLite reads cost microseconds of CPU in the calling thread and, under WAL, never wait
    for a lock, so the API runs them on its event loop: no thread hop, and none of the GIL hand-offs around
    every sqlite3 call (GET one address went from about 520 to 1150 requests/s, bench/RESULTS.md). The
    price: a long scan (an admin's search across every project of a large installation) holds the loop
    while it runs. PostgreSQL reads wait on the network and stay in the thread pool, except in Postwerk's
    mail services (`service_main.mail_service_database`), whose lookups are one short indexed query each.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retried_read_engine: Engine | None = None,
        reads_inline: bool | None = None,
        keeps_read_connections: bool = False,
    ) -> None:
        self.engine = engine
        self.retried_read_engine = retried_read_engine
        self._read_engine = engine
        self.reads_inline = engine.dialect.name == "sqlite" if reads_inline is None else reads_inline
        # `read_with` on a connection kept by each thread (see there), or None: a pool checkout per read.
        self._kept_reads: threading.local | None = threading.local() if keeps_read_connections else None
        if engine.dialect.name == "sqlite":
            self._read_options: dict[str, Any] = {READ_OPTION: True}
        else:
            self._read_options = {"isolation_level": "AUTOCOMMIT"}

    def for_retried_reads(self) -> Database:
        """This database, for callers that answer any failed read another way (the API's hot reads fall
        back to FastAPI, which reads again): their reads may use `retried_read_engine`, a PostgreSQL pool
        without the ping on checkout. That saves a round trip per request; a connection the server has
        closed fails once, which invalidates the pool, and the retry gets a new connection."""
        database = Database(self.engine, retried_read_engine=self.retried_read_engine)
        database._read_engine = self.retried_read_engine or self.engine
        return database

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read_engine.connect() as connection:
            yield connection.execution_options(**self._read_options)

    def read_with(self, read: Callable[[Connection], T]) -> T:
        """`read` on a connection of the pool, and once more on a new connection if that one turns out dead
        (the database restarted): for engines without the ping on checkout (`create_db_engine(pre_ping=
        False)`, Postwerk's mail services: a lookup per message is one round trip, not two). A dead
        connection invalidates the whole pool, so a restart costs one failed try, not one per connection.

        With `keeps_read_connections` (the mail services) each thread keeps its read connection between
        reads, outside any transaction: a checkout and return per lookup (the isolation level set and
        reset, the pool's bookkeeping) cost a third of a PostgreSQL lookup's CPU (bench/RESULTS.md)."""
        if self._kept_reads is not None:
            return self._read_kept(read)
        try:
            with self.read() as connection:
                return read(connection)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        with self.read() as connection:
            return read(connection)

    def _read_kept(self, read: Callable[[Connection], T]) -> T:
        kept = self._kept_reads
        assert kept is not None
        for attempt in (1, 2):
            connection: Connection | None = getattr(kept, "connection", None)
            if connection is None or connection.invalidated or connection.closed:
                connection = self._read_engine.connect().execution_options(**self._read_options)
                kept.connection = connection
            try:
                return read(connection)
            except DBAPIError as error:
                if not error.connection_invalidated or attempt == 2:
                    raise
                kept.connection = None
                connection.close()
        raise AssertionError("unreachable")

    def close_kept_connections(self) -> None:
        """Return this thread's kept read connection to the pool (a service stopping)."""
        if self._kept_reads is not None:
            connection = getattr(self._kept_reads, "connection", None)
            self._kept_reads.connection = None
            if connection is not None:
                connection.close()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection

    @contextmanager
    def write_statement(self) -> Iterator[Connection]:
        """`write` for a unit of work that is one statement, atomic by itself: on PostgreSQL in autocommit,
        one round trip instead of three (BEGIN, the statement, COMMIT). SQLite runs it as `write` does (its
        caller may run one statement many times)."""
        if self.engine.dialect.name == "sqlite":
            with self.write() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")


def is_unique_violation(error: IntegrityError) -> bool:
    text = str(error.orig).lower()
    return "unique" in text or "duplicate key" in text


# --- paging -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    limit: int
    skip: int


@dataclass(frozen=True)
class Sorting:
    column: str
    descending: bool = False


def _ordered(statement: Any, table: Any, sorting: Sequence[Sorting]) -> Any:
    # Forwarding addresses have no mailbox values: they sort last either way, alike on both databases.
    clauses = [
        (table.c[s.column].desc() if s.descending else table.c[s.column].asc()).nulls_last() for s in sorting
    ]
    return statement.order_by(*clauses, table.c.id.asc())


def _pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: Any, term: str) -> ColumnElement[bool]:
    return column.ilike(_pattern(term), escape="\\")  # type: ignore[no-any-return]


def _search_text_contains(pattern: Any, *, use_trigram_index: bool) -> ColumnElement[bool]:
    """`search_text` is folded already, so LIKE suffices. Within one project the project index finds the
    few candidate rows faster than the trigram index finds every match across the installation, so there
    the column is wrapped in an expression the trigram index cannot serve."""
    column: Any = mail_addresses.c.search_text
    if not use_trigram_index:
        column = column + literal_column("''")
    return column.like(pattern, escape="\\")  # type: ignore[no-any-return]


# --- projects -----------------------------------------------------------------------------------------


def insert_project(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(projects).values(**values))


_FIND_PROJECT_BY_SHORT_ID = select(projects).where(projects.c.short_id == bindparam("reference"))
_FIND_PROJECT_BY_ID = select(projects).where(projects.c.id == bindparam("reference"))


def find_project(connection: Connection, reference: str) -> Row[Any] | None:
    statement = _FIND_PROJECT_BY_SHORT_ID if reference.startswith("p-") else _FIND_PROJECT_BY_ID
    return connection.execute(statement, {"reference": reference}).first()


def delete_project(connection: Connection, project_id: str, *, deleted_at: datetime) -> bool:
    """The project and everything in it; its mailboxes are recorded as deleted at `deleted_at`."""
    _record_deleted_mailboxes(connection, mail_addresses.c.project_id == project_id, deleted_at)
    return connection.execute(delete(projects).where(projects.c.id == project_id)).rowcount > 0


def set_project_sending_suspended(
    connection: Connection, project_id: str, suspended: bool, *, updated_at: datetime
) -> None:
    connection.execute(
        update(projects)
        .where(projects.c.id == project_id)
        .values(sending_suspended=suspended, updated_at=updated_at)
    )


# --- domains ------------------------------------------------------------------------------------------


def insert_domain(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(domains).values(**values))


def find_domain(connection: Connection, ascii_name: str) -> Row[Any] | None:
    return connection.execute(select(domains).where(domains.c.name_ascii == ascii_name)).first()


def find_domain_folded(connection: Connection, folded_name: str) -> Row[Any] | None:
    """The hosted domain that folds to this name (`DomainName.folded`), if any; also among the domains
    without a folded name (the later of a pair hosted before migration 0015: rare, folded here)."""
    found = connection.execute(select(domains).where(domains.c.name_folded == folded_name)).first()
    if found is not None:
        return found
    unfolded = connection.execute(select(domains).where(domains.c.name_folded.is_(None))).all()
    return next(
        (row for row in unfolded if DomainName(row.name_unicode, row.name_ascii).folded == folded_name), None
    )


def list_domains(connection: Connection, project_id: str | None = None) -> list[Row[Any]]:
    statement = select(domains).order_by(domains.c.name_ascii)
    if project_id is not None:
        statement = statement.where(domains.c.project_id == project_id)
    return list(connection.execute(statement).all())


def count_addresses_in_domain(connection: Connection, domain_id: str) -> int:
    statement = (
        select(func.count()).select_from(mail_addresses).where(mail_addresses.c.domain_id == domain_id)
    )
    return int(connection.execute(statement).scalar_one())


def delete_domain(connection: Connection, domain_id: str, *, deleted_at: datetime) -> None:
    """The domain and its addresses; their mailboxes are recorded as deleted at `deleted_at`."""
    _record_deleted_mailboxes(connection, mail_addresses.c.domain_id == domain_id, deleted_at)
    connection.execute(delete(domains).where(domains.c.id == domain_id))


# --- tokens -------------------------------------------------------------------------------------------


def insert_token(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(api_tokens).values(**values))


_FIND_TOKEN = select(
    api_tokens.c.id, api_tokens.c.is_admin, api_tokens.c.project_id, api_tokens.c.read_only
).where(api_tokens.c.token_sha256 == bindparam("digest"))


def find_token(connection: Connection, digest: str) -> Any:
    """The token's scope columns (id, is_admin, project_id, read_only), or None."""
    return connection.execute(_FIND_TOKEN, {"digest": digest}).first()


def _project_id_with_token(column: Any) -> Any:
    found = projects.c.id.label("found_project_id")
    joined = api_tokens.outerjoin(projects, column == bindparam("reference"))
    return (
        select(*_FIND_TOKEN.selected_columns, found)
        .select_from(joined)
        .where(api_tokens.c.token_sha256 == bindparam("digest"))
    )


_FIND_PROJECT_ID_WITH_TOKEN_BY_SHORT_ID = _project_id_with_token(projects.c.short_id)
_FIND_PROJECT_ID_WITH_TOKEN_BY_ID = _project_id_with_token(projects.c.id)


def find_project_id_with_token(connection: Connection, reference: str, digest: str) -> Any:
    """`find_token` and the id of a project (as `found_project_id`, NULL if there is none) in one query;
    None when no token has this digest."""
    statement = (
        _FIND_PROJECT_ID_WITH_TOKEN_BY_SHORT_ID
        if reference.startswith("p-")
        else _FIND_PROJECT_ID_WITH_TOKEN_BY_ID
    )
    rows = driver_rows(connection, statement, {"reference": reference, "digest": digest})
    return rows[0] if rows else None


def list_projects(
    connection: Connection,
    *,
    only_id: str | None,
    customer_id: str | None,
    search: str | None,
    sorting: Sequence[Sorting],
    page: Page,
) -> tuple[list[Row[Any]], int]:
    condition: ColumnElement[bool] = true()
    if only_id is not None:
        condition = projects.c.id == only_id
    if customer_id is not None:
        condition = and_(condition, projects.c.customer_id == customer_id)
    if search:
        condition = and_(
            condition,
            or_(
                projects.c.id == search,
                _contains(projects.c.short_id, search),
                _contains(projects.c.description, search),
            ),
        )
    total = connection.execute(select(func.count()).select_from(projects).where(condition)).scalar_one()
    statement = _ordered(select(projects).where(condition), projects, sorting).limit(page.limit)
    rows = connection.execute(statement.offset(page.skip)).all()
    return list(rows), int(total)


def list_tokens(connection: Connection) -> list[Any]:
    statement = select(
        api_tokens.c.id,
        api_tokens.c.project_id,
        api_tokens.c.is_admin,
        api_tokens.c.read_only,
        api_tokens.c.created_at,
    ).order_by(api_tokens.c.created_at, api_tokens.c.id)
    return list(connection.execute(statement).all())


def delete_token(connection: Connection, token_id: str) -> bool:
    return connection.execute(delete(api_tokens).where(api_tokens.c.id == token_id)).rowcount > 0


def any_token(connection: Connection) -> bool:
    return connection.execute(select(literal(1)).select_from(api_tokens).limit(1)).first() is not None


# --- mail addresses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressFilter:
    project_ids: Sequence[str] | None  # None: every project
    search: str | None = None
    search_key: str | None = (
        None  # the search term folded like `search_text` (domain.addresses.search_pattern)
    )
    forward_address: bool | None = None
    catch_all: bool | None = None
    auto_responder: bool | None = None
    mail_archive: bool | None = None

    def statement_key(self) -> tuple[Any, ...]:
        """What the SQL of `condition()` depends on; the values are bound parameters (`parameters()`)."""
        projects_kind = None if self.project_ids is None else len(self.project_ids) == 1
        flags = (self.forward_address, self.catch_all, self.auto_responder, bool(self.mail_archive))
        return (projects_kind, bool(self.search), *flags)

    def parameters(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.project_ids is not None and len(self.project_ids) == 1:
            values["project_id"] = self.project_ids[0]
        elif self.project_ids is not None:
            values["project_ids"] = list(self.project_ids)
        if self.search:
            values["search_id"] = self.search
            values["search_pattern"] = _pattern(self.search_key or self.search)
        return values

    def condition(self) -> ColumnElement[bool]:
        c = mail_addresses.c
        parts: list[ColumnElement[bool]] = []
        if self.project_ids is not None:
            parts.append(
                c.project_id == bindparam("project_id")
                if len(self.project_ids) == 1
                else c.project_id.in_(bindparam("project_ids", expanding=True))
            )
        if self.search:
            matches_text = _search_text_contains(
                bindparam("search_pattern"), use_trigram_index=self.project_ids is None
            )
            parts.append(or_(c.id == bindparam("search_id"), matches_text))
        if self.forward_address is not None:
            parts.append(c.is_mailbox == (not self.forward_address))
        if self.catch_all is not None:
            parts.append(c.is_catch_all == self.catch_all)
        if self.auto_responder is not None:
            parts.append(c.autoresponder_active == self.auto_responder)
        if self.mail_archive:
            parts.append(false())  # the mail archive does not exist yet: no address has one
        return and_(true(), *parts)


@dataclass
class AddressRecord:
    row: Row[Any]
    targets: list[str] = field(default_factory=list)


# What reads of addresses fetch: every column but the password hash, the search keys and the stored
# document, which no reader of rows needs. Statements that run on every request are built once (building
# one costs more than running it).
_NOT_READ = {"password_hash", "search_text", "document", "document_version", "unicode_key"}
_ADDRESS_COLUMNS = [c for c in mail_addresses.c if c.name not in _NOT_READ]
_GET_ADDRESS = (
    select(*_ADDRESS_COLUMNS, forward_targets.c.target)
    .outerjoin(forward_targets, forward_targets.c.address_id == mail_addresses.c.id)
    .where(mail_addresses.c.id == bindparam("address_id"))
    .order_by(forward_targets.c.position)
)


def _with_targets(rows: Iterable[Any]) -> list[AddressRecord]:
    """Rows of an address LEFT JOIN its forward targets (ordered by address, then position) as records."""
    records: list[AddressRecord] = []
    for row in rows:
        if not records or records[-1].row.id != row.id:
            records.append(AddressRecord(row))
        if row.target is not None:
            records[-1].targets.append(row.target)
    return records


_GET_ADDRESS_FOR_UPDATE = _GET_ADDRESS.with_for_update(of=mail_addresses)


def get_address(connection: Connection, address_id: str, *, for_update: bool = False) -> AddressRecord | None:
    """With `for_update`, the address row stays locked until the transaction ends (PostgreSQL; SQLite
    writers hold the database's write lock anyway)."""
    statement = _GET_ADDRESS_FOR_UPDATE if for_update else _GET_ADDRESS
    records = _with_targets(connection.execute(statement, {"address_id": address_id}).all())
    return records[0] if records else None


_ADDRESS_DOCUMENT_STATEMENTS: dict[tuple[str, str], Any] = {}
_STORED = MAIL_ADDRESS_DOCUMENT.stored_in
assert _STORED is not None
# What readers of documents select: the stored text and its version (see `_current_documents`).
_DOCUMENT_COLUMNS = (
    mail_addresses.c.id.label("address_id"),
    _STORED.document.label("document"),
    _STORED.version.label("document_version"),
)


def _document_statement(connection: Connection, purpose: str) -> Any:
    """Statements around the address document, built once per dialect (`address_document`)."""
    key = (connection.dialect.name, purpose)
    statement = _ADDRESS_DOCUMENT_STATEMENTS.get(key)
    if statement is None:
        by_id = mail_addresses.c.id == bindparam("address_id")
        address_project = mail_addresses.c.project_id.label("address_project_id")
        if purpose == "get":
            statement = select(address_project, *_DOCUMENT_COLUMNS).where(by_id)
        elif purpose == "get with token":
            # The token's row, and the address joined to it when it exists (NULL columns otherwise).
            statement = (
                select(*_FIND_TOKEN.selected_columns, address_project, *_DOCUMENT_COLUMNS)
                .select_from(api_tokens.outerjoin(mail_addresses, by_id))
                .where(api_tokens.c.token_sha256 == bindparam("digest"))
            )
        elif purpose == "compute":
            computed = MAIL_ADDRESS_DOCUMENT.expression(connection.dialect)
            statement = select(mail_addresses.c.id, computed).where(
                mail_addresses.c.id.in_(bindparam("ids", expanding=True))
            )
        else:
            values = MAIL_ADDRESS_DOCUMENT.refresh_values(connection.dialect)
            statement = update(mail_addresses).where(by_id).values(values)
        _ADDRESS_DOCUMENT_STATEMENTS[key] = statement
    return statement


def _current_documents(connection: Connection, rows: Sequence[Any]) -> list[str]:
    """The documents of rows selected with `_DOCUMENT_COLUMNS`: stored ones where written with the current
    shape, the others computed (one more query, only when there are any)."""
    version = MAIL_ADDRESS_DOCUMENT.version(connection.dialect)
    stale = [row.address_id for row in rows if row.document_version != version]
    if not stale:
        return [row.document for row in rows]
    computed = dict(connection.execute(_document_statement(connection, "compute"), {"ids": stale}).all())
    return [computed.get(row.address_id, row.document) for row in rows]


@dataclass(frozen=True)
class FoundDocument:
    address_project_id: str
    document: str


def get_address_document(connection: Connection, address_id: str) -> FoundDocument | None:
    """One address's project and its document (JSON text, `address_document`)."""
    row = connection.execute(_document_statement(connection, "get"), {"address_id": address_id}).first()
    if row is None:
        return None
    return FoundDocument(row.address_project_id, _current_documents(connection, [row])[0])


def get_address_document_with_token(
    connection: Connection, address_id: str, digest: str
) -> tuple[Any, FoundDocument | None] | None:
    """`find_token` and `get_address_document` in one query: None when no token has this digest, else the
    token's row and the address (None when it does not exist)."""
    statement = _document_statement(connection, "get with token")
    rows = driver_rows(connection, statement, {"address_id": address_id, "digest": digest})
    if not rows:
        return None
    row = rows[0]
    if row.address_project_id is None:
        return row, None
    return row, FoundDocument(row.address_project_id, _current_documents(connection, [row])[0])


def store_address_document(connection: Connection, address_id: str) -> None:
    """Every write of an address or its forward targets must end here, in the same transaction (the writes
    in this module do): the API serves the stored document (`address_document`)."""
    connection.execute(_document_statement(connection, "store"), {"address_id": address_id})


def store_stale_documents(database: Database, batch: int) -> int:
    """`store_stale_documents_after` from the first address to the last, a write per batch. Returns how
    many were stored."""
    after, stored = "", 0
    while True:
        with database.write() as connection:
            last, count = store_stale_documents_after(connection, after, batch)
        stored += count
        if last is None:
            return stored
        after = last


def store_stale_documents_after(connection: Connection, after_id: str, limit: int) -> tuple[str | None, int]:
    """Store the documents of the next `limit` addresses by id (after `after_id`) whose stored document is
    missing or of another shape. Returns the last id stored (None when there were none left) and how many:
    a caller walks the stale rows once, batch by batch (no batch at all when none is stale)."""
    c = mail_addresses.c
    version = MAIL_ADDRESS_DOCUMENT.version(connection.dialect)
    stale = (
        connection.execute(
            select(c.id)
            .where(c.id > after_id, or_(c.document_version.is_(None), c.document_version != version))
            .order_by(c.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if not stale:
        return None, 0
    values = MAIL_ADDRESS_DOCUMENT.refresh_values(connection.dialect)
    connection.execute(update(mail_addresses).where(c.id.in_(stale)).values(values))
    return str(stale[-1]), len(stale)


# Built once per shape of request (filters, sort, document, dialect): building a statement costs more than
# running it on SQLite. Few shapes exist (a handful of flags and sort fields), so the cache stays small.
_ADDRESS_LIST_STATEMENTS: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _address_list_statements(
    connection: Connection, address_filter: AddressFilter, sorting: Sequence[Sorting]
) -> tuple[Any, Any]:
    key = (connection.dialect.name, address_filter.statement_key(), tuple(sorting))
    statements = _ADDRESS_LIST_STATEMENTS.get(key)
    if statements is None:
        condition = address_filter.condition()
        page = _ordered(
            select(*_DOCUMENT_COLUMNS).select_from(mail_addresses).where(condition), mail_addresses, sorting
        )
        page = page.limit(bindparam("limit")).offset(bindparam("skip"))
        count = select(func.count()).select_from(mail_addresses).where(condition)
        statements = _ADDRESS_LIST_STATEMENTS[key] = (page, count)
    return statements


def list_address_documents(
    connection: Connection, address_filter: AddressFilter, sorting: Sequence[Sorting], page: Page
) -> tuple[list[str], int]:
    """A page of addresses as JSON texts (see `get_address_document`), and how many match in all."""
    page_statement, count_statement = _address_list_statements(connection, address_filter, sorting)
    parameters = address_filter.parameters()
    documents: list[str] = []
    if page.limit > 0:
        values = {**parameters, "limit": page.limit, "skip": page.skip}
        if "project_ids" in values:  # a list of projects: expanded at execution, SQLAlchemy's job
            rows: Sequence[Any] = connection.execute(page_statement, values).all()
        else:
            rows = driver_rows(connection, page_statement, values)
        documents = _current_documents(connection, rows)
    if 0 < len(documents) < page.limit or (not documents and page.skip == 0 and page.limit > 0):
        return documents, page.skip + len(documents)  # the page holds the last match: no count needed
    return documents, int(connection.execute(count_statement, parameters).scalar_one())


def insert_address(
    connection: Connection, values: Mapping[str, Any], targets: Sequence[Mapping[str, Any]] = ()
) -> None:
    """A new address and its forward targets."""
    connection.execute(insert(mail_addresses).values(**values))
    _insert_forward_targets(connection, values["id"], targets)
    store_address_document(connection, values["id"])


def update_address(connection: Connection, address_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(mail_addresses).where(mail_addresses.c.id == address_id).values(**values))
    store_address_document(connection, address_id)


_USAGE_CHANGE_NAME = "usage_change"


def _usage_changes(dialect_name: str) -> Any:
    """The changes of usage as a derived table the UPDATE below joins: per mailbox the total Dovecot counted
    (NULL when it did not count) and the bytes added since, all measured at one time.

    PostgreSQL: every mailbox of a batch in one statement, from arrays (`unnest`): one round trip, in
    autocommit (`Database.write_statement`), where a statement per mailbox inside BEGIN and COMMIT took three
    or more, and about 1.8 times the usage service's CPU per batch (bench/RESULTS.md, session 6). SQLite,
    which has no arrays and no round trips: one row, the statement run once per mailbox."""
    measured_at = bindparam("usage_updated_at", type_=UtcDateTime()).label("measured_at")
    if dialect_name == "postgresql":
        unnested = (
            func.unnest(
                bindparam("address_ids", type_=ARRAY(Text())),
                bindparam("usage_totals", type_=ARRAY(BigInteger())),
                bindparam("usage_deltas", type_=ARRAY(BigInteger())),
            )
            .table_valued(
                table_column("address_id", Text()),
                table_column("total", BigInteger()),
                table_column("delta", BigInteger()),
            )
            .render_derived("changes")
        )
        return select(unnested.c.address_id, unnested.c.total, unnested.c.delta, measured_at).subquery(
            _USAGE_CHANGE_NAME
        )
    return select(
        bindparam("address_id", type_=mail_addresses.c.id.type).label("address_id"),
        bindparam("usage_total", type_=BigInteger()).label("total"),
        bindparam("usage_delta", type_=BigInteger()).label("delta"),
        measured_at,
    ).subquery(_USAGE_CHANGE_NAME)


@dataclass(frozen=True)
class _UsageStatements:
    """PostgreSQL: `patch` changes the rows whose stored document it can patch (`Document.patched_sql_with`)
    and returns their ids, `rebuild` the others, whole documents built. A CASE of both in one statement cost
    PostgreSQL half as much again per delivery as the patch alone: it sets up every expression of a
    statement at each execution, the rebuild's hundreds included, taken or not (bench/RESULTS.md, session
    8). SQLite: `patch` is that CASE (it evaluates only the branch taken), `rebuild` is None."""

    patch: Any
    rebuild: Any


_USAGE_STATEMENTS: dict[str, _UsageStatements] = {}


def _new_usage(total: ColumnElement[Any], delta: ColumnElement[Any]) -> ColumnElement[Any]:
    # Never below zero: an increment may arrive for mail a count has already left out.
    usage = func.coalesce(total, mail_addresses.c.usage_bytes) + delta
    return case((usage < 0, 0), else_=usage)


def _usage_statements(connection: Connection) -> _UsageStatements:
    """The usage of a mailbox and its stored document in one UPDATE: one new version of the row, not two
    (an UPDATE of the usage, then one of the document built from it)."""
    dialect = connection.dialect
    statements = _USAGE_STATEMENTS.get(dialect.name)
    if statements is not None:
        return statements
    change = _usage_changes(dialect.name).c

    def named(column: str, type_: Any) -> ColumnElement[Any]:
        return literal_column(f"{_USAGE_CHANGE_NAME}.{column}", type_=type_)

    new_columns = {
        "usage_bytes": _new_usage(named("total", BigInteger()), named("delta", BigInteger())),
        "usage_updated_at": named("measured_at", UtcDateTime()),
    }
    rebuilt = literal_column(MAIL_ADDRESS_DOCUMENT.computed_sql_with(dialect, new_columns), type_=Text)
    patch = MAIL_ADDRESS_DOCUMENT.patched_sql_with(dialect, new_columns, only="current")
    patched = literal_column(patch.document, type_=Text)
    applies = literal_column(patch.applies, type_=Boolean)
    stored = MAIL_ADDRESS_DOCUMENT.stored_in
    assert stored is not None

    def update_with(document: ColumnElement[Any]) -> Any:
        return (
            update(mail_addresses)
            .where(mail_addresses.c.id == change.address_id)
            .values(
                {
                    mail_addresses.c.usage_bytes: _new_usage(change.total, change.delta),
                    mail_addresses.c.usage_updated_at: change.measured_at,
                    stored.document: document,
                    stored.version: MAIL_ADDRESS_DOCUMENT.version(dialect),
                }
            )
        )

    if dialect.name == "postgresql":
        statements = _UsageStatements(
            patch=update_with(patched).where(applies).returning(mail_addresses.c.id),
            rebuild=update_with(rebuilt),
        )
    else:
        statements = _UsageStatements(
            patch=update_with(case((applies, patched), else_=rebuilt)), rebuild=None
        )
    _USAGE_STATEMENTS[dialect.name] = statements
    return statements


def update_usage(
    connection: Connection, changes: Mapping[str, tuple[int | None, int]], measured_at: datetime
) -> None:
    """Store the storage usage of mailboxes, by mailbox id: the total Dovecot counted, if it did, then the
    bytes added since. Each also stores the address's API document, so it shows the usage at once. An id
    that is no longer an address changes nothing. PostgreSQL: one statement for all of them, atomic by
    itself (`Database.write_statement` runs it without BEGIN and COMMIT), and one more for those whose
    stored document had to be built whole (written before, by another release or in bulk: rare), each
    atomic on its own: should the second fail, the caller's retry stores the totals again and Dovecot,
    told the commit failed, counts those mailboxes and sends totals, so a batch stored in part is repaired
    (`usage.dict_server`). SQLite: the statement once per mailbox, in the caller's transaction."""
    if not changes:
        return
    if measured_at.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    statements = _usage_statements(connection)
    if connection.dialect.name == "postgresql":
        # In the order of the ids: the plan is a nested loop over the arrays, so mail nodes that share the
        # database lock the rows they change in one order, and two batches with mailboxes in common wait
        # for each other instead of deadlocking.
        mailbox_ids = sorted(changes)
        # On the driver's cursor: a write on every delivery, SQLAlchemy's execution path cost half as much
        # as the statement itself (bench/RESULTS.md, session 8). Arrays and an aware datetime need no
        # processing.
        rows = driver_rows(
            connection, statements.patch, _usage_arrays(changes, mailbox_ids, measured_at.astimezone(UTC))
        )
        patched = {row.id for row in rows}
        others = [mailbox_id for mailbox_id in mailbox_ids if mailbox_id not in patched]
        if others:
            connection.execute(statements.rebuild, _usage_arrays(changes, others, measured_at))
        return
    rows = [
        {
            "address_id": mailbox_id,
            "usage_total": total,
            "usage_delta": delta,
            "usage_updated_at": measured_at,
        }
        for mailbox_id, (total, delta) in changes.items()
    ]
    connection.execute(statements.patch, rows)


def _usage_arrays(
    changes: Mapping[str, tuple[int | None, int]], mailbox_ids: Sequence[str], measured_at: datetime
) -> dict[str, Any]:
    return {
        "address_ids": mailbox_ids,
        "usage_totals": [changes[mailbox_id][0] for mailbox_id in mailbox_ids],
        "usage_deltas": [changes[mailbox_id][1] for mailbox_id in mailbox_ids],
        "usage_updated_at": measured_at,
    }


def replace_forward_targets(
    connection: Connection, address_id: str, targets: Sequence[Mapping[str, Any]]
) -> None:
    connection.execute(delete(forward_targets).where(forward_targets.c.address_id == address_id))
    _insert_forward_targets(connection, address_id, targets)
    store_address_document(connection, address_id)


def _insert_forward_targets(
    connection: Connection, address_id: str, targets: Sequence[Mapping[str, Any]]
) -> None:
    if targets:
        connection.execute(
            insert(forward_targets),
            [{"address_id": address_id, "position": index, **target} for index, target in enumerate(targets)],
        )


def delete_address(connection: Connection, address_id: str, *, deleted_at: datetime) -> None:
    """The address; its mailbox, if it has one, is recorded as deleted at `deleted_at`."""
    _record_deleted_mailboxes(connection, mail_addresses.c.id == address_id, deleted_at)
    connection.execute(delete(mail_addresses).where(mail_addresses.c.id == address_id))


# --- deleted mailboxes (their mail stays on disk for a grace period; `postwerk.mailstack.sweep`) ---------


def _record_deleted_mailboxes(
    connection: Connection, addresses: ColumnElement[bool], deleted_at: datetime
) -> None:
    """Record the mailboxes among `addresses` as deleted now, in the caller's transaction, before the rows
    go. A mailbox id is never used twice; an older record of the same id (a mailbox brought back by a
    database restore, then deleted again) is replaced."""
    mailbox_ids = select(mail_addresses.c.id).where(addresses, mail_addresses.c.is_mailbox)
    connection.execute(delete(deleted_mailboxes).where(deleted_mailboxes.c.mailbox_id.in_(mailbox_ids)))
    when = bindparam("deleted_at", deleted_at, type_=UtcDateTime())
    connection.execute(
        insert(deleted_mailboxes).from_select(
            ["mailbox_id", "deleted_at"],
            select(mail_addresses.c.id, when).where(addresses, mail_addresses.c.is_mailbox),
        )
    )


def mailbox_deletions(connection: Connection, mailbox_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of these mailboxes was deleted, for those with a record."""
    statement = select(deleted_mailboxes.c.mailbox_id, deleted_mailboxes.c.deleted_at).where(
        deleted_mailboxes.c.mailbox_id.in_(bindparam("ids", expanding=True))
    )
    return {str(row[0]): row[1] for row in connection.execute(statement, {"ids": list(mailbox_ids)})}


def forget_mailbox_deletions(connection: Connection, before: datetime) -> int:
    """Drop the records of deletions older than `before`; returns how many."""
    statement = delete(deleted_mailboxes).where(deleted_mailboxes.c.deleted_at < before)
    return int(connection.execute(statement).rowcount)


def catch_all_of_domain(connection: Connection, domain_id: str) -> str | None:
    statement = select(mail_addresses.c.id).where(
        mail_addresses.c.domain_id == domain_id, mail_addresses.c.is_catch_all
    )
    return connection.execute(statement).scalar()


def _claim_facts_statement() -> Any:
    holder = mail_addresses.alias("holder")
    taken = select(holder.c.id).where(holder.c.lookup_key == bindparam("key")).scalar_subquery()
    # Written bare, as in the partial index's predicate, so that SQLite uses that index.
    catch_all = (
        select(holder.c.id)
        .where(holder.c.domain_id == domains.c.id, literal_column("holder.is_catch_all"))
        .scalar_subquery()
    )
    return select(
        domains.c.id, domains.c.project_id, taken.label("key_holder"), catch_all.label("catch_all_holder")
    ).where(domains.c.name_ascii == bindparam("domain"))


_CLAIM_FACTS = _claim_facts_statement()


def claim_facts(connection: Connection, domain_ascii: str, key: str) -> Any:
    """What a new or renamed address needs to know, in one query: its domain (id, project_id), which
    address holds its lookup key (`key_holder`) and which the domain's catch-all (`catch_all_holder`).
    None when the domain is not hosted."""
    return connection.execute(_CLAIM_FACTS, {"domain": domain_ascii, "key": key}).first()


def address_id_by_key(connection: Connection, key: str) -> str | None:
    """The id of the address whose lookup key is `key`, if there is one."""
    found = connection.execute(select(mail_addresses.c.id).where(mail_addresses.c.lookup_key == key)).scalar()
    return None if found is None else str(found)


def address_key_taken(connection: Connection, key: str) -> bool:
    return address_id_by_key(connection, key) is not None


# --- delivery boxes -----------------------------------------------------------------------------------


def insert_delivery_box(connection: Connection, values: Mapping[str, Any]) -> None:
    connection.execute(insert(delivery_boxes).values(**values))


def get_delivery_box(connection: Connection, box_id: str) -> Row[Any] | None:
    return connection.execute(select(delivery_boxes).where(delivery_boxes.c.id == box_id)).first()


def find_delivery_box_by_name(connection: Connection, name: str) -> Row[Any] | None:
    """By its login name (lower case, as stored)."""
    return connection.execute(select(delivery_boxes).where(delivery_boxes.c.name == name)).first()


def list_delivery_boxes(
    connection: Connection, project_id: str, search: str | None, page: Page
) -> tuple[list[Row[Any]], int]:
    c = delivery_boxes.c
    condition: ColumnElement[bool] = c.project_id == project_id
    if search:
        condition = and_(
            condition, or_(c.id == search, _contains(c.name, search), _contains(c.description, search))
        )
    total = connection.execute(select(func.count()).select_from(delivery_boxes).where(condition)).scalar_one()
    statement = select(delivery_boxes).where(condition).order_by(c.created_at, c.id)
    rows = connection.execute(statement.limit(page.limit).offset(page.skip)).all()
    return list(rows), int(total)


def update_delivery_box(connection: Connection, box_id: str, values: Mapping[str, Any]) -> None:
    connection.execute(update(delivery_boxes).where(delivery_boxes.c.id == box_id).values(**values))


def delete_delivery_box(connection: Connection, box_id: str) -> None:
    connection.execute(delete(delivery_boxes).where(delivery_boxes.c.id == box_id))


# --- sender rules (project mail settings) -------------------------------------------------------------


def sender_rule_lists(connection: Connection, project_id: str) -> dict[str, list[str]]:
    statement = (
        select(sender_rules.c.list_kind, sender_rules.c.entry)
        .where(sender_rules.c.project_id == project_id)
        .order_by(sender_rules.c.list_kind, sender_rules.c.position)
    )
    lists: dict[str, list[str]] = {"blacklist": [], "whitelist": []}
    for kind, entry in connection.execute(statement):
        lists[kind].append(entry)
    return lists


def replace_sender_rules(connection: Connection, project_id: str, kind: str, entries: Sequence[str]) -> None:
    # Concurrent replacements of one project's list run one after the other (no duplicate positions).
    connection.execute(select(projects.c.id).where(projects.c.id == project_id).with_for_update())
    connection.execute(
        delete(sender_rules).where(sender_rules.c.project_id == project_id, sender_rules.c.list_kind == kind)
    )
    if entries:
        connection.execute(
            insert(sender_rules),
            [
                {"project_id": project_id, "list_kind": kind, "position": index, "entry": entry}
                for index, entry in enumerate(entries)
            ],
        )
