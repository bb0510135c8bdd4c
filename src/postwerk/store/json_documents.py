"""JSON documents built by the database.

A list of 100 addresses costs several times more to turn into Python objects and back into JSON than to
have the database write the JSON itself (bench/RESULTS.md, "Profiling"). A document is declared once as a
nested mapping of wire names to columns and constants; `Document.expression` turns it into one SQL
expression for the connection's dialect (SQLite's `json_object`, PostgreSQL's `json_build_object`).

What a shape may hold, with the same result on both databases:
- a column: Boolean columns become JSON booleans, timestamps RFC 3339 UTC strings with six fractional
  digits and a `Z`, everything else its JSON value;
- a constant (bool, int, str) or a nested mapping;
- `optional(column)`: the member is left out where the column is NULL;
- `when(condition, {...})`: a nested object, left out where the condition does not hold;
- `ordered_array(...)`: a JSON array of one column of related rows, in a given order.

Objects with optional members are written as one CASE branch per combination of present members (at most
`MAX_OPTIONAL_MEMBERS` per object), so no row pays for a second pass over its JSON to drop members.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Integer,
    Numeric,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect

from postwerk.store.tables import UtcDateTime

Shape = Mapping[str, Any]
MAX_OPTIONAL_MEMBERS = 4


@dataclass(frozen=True)
class When:
    condition: ColumnElement[bool]
    shape: Shape


def when(condition: ColumnElement[bool], shape: Shape) -> When:
    """A nested object present only where `condition` holds."""
    return When(condition, shape)


@dataclass(frozen=True)
class Optional:
    value: ColumnElement[Any]


def optional(value: ColumnElement[Any]) -> Optional:
    """A member left out where `value` is NULL."""
    return Optional(value)


@dataclass(frozen=True)
class OrderedArray:
    value: ColumnElement[Any]
    where: ColumnElement[bool]
    order_by: ColumnElement[Any]


def ordered_array(value: ColumnElement[Any], *, where: ColumnElement[bool], order_by: Any) -> OrderedArray:
    return OrderedArray(value, where, order_by)


@dataclass(frozen=True)
class StoredIn:
    """Columns of the same row that keep the document as last written, and the `version` of the shape
    it was written with (the `Document.version`)."""

    document: Column[Any]
    version: Column[Any]


@dataclass(frozen=True)
class Patch:
    """SQL text (`Document.patched_sql_with`): where `applies` holds for a row, `document` is its new
    document."""

    applies: str
    document: str


@dataclass(frozen=True)
class _Compiled:
    """A document's SQL for one dialect, its version (a digest of that SQL) and the column to select."""

    sql: str
    version: str
    expression: ColumnElement[str]


class Document:
    """A document shape and, once built, its SQL for each dialect.

    The SQL is compiled to text once and used as a literal column: SQLAlchemy would otherwise walk its whole
    tree (hundreds of nodes) to make a cache key every time a statement around it is built, which cost more
    than running the query (a list of 100: 2.6 ms against 0.5 ms).

    With `stored_in`, every write of a row stores its document (`refresh_values`); readers take the stored
    text where its version is this shape's `version` and compute the others (rows loaded in bulk, or written
    by a release with a different shape), so nothing stale is served, and a read of 100 rows copies text
    instead of building JSON (bench/RESULTS.md). The computing stays out of the reading query: PostgreSQL
    plans the whole expression on every execution (0.36 ms), even where no row needs it.
    """

    def __init__(self, table: Table, shape: Shape, *, stored_in: StoredIn | None = None) -> None:
        self.table = table
        self.shape = shape
        self.stored_in = stored_in
        self._compiled: dict[str, _Compiled] = {}

    def computed_sql(self, dialect: Dialect) -> str:
        """SQL text of the document of a row of `table`, in a statement on `table` (unaliased)."""
        return self._for(dialect).sql

    def version(self, dialect: Dialect) -> str:
        """What a stored document written with this shape carries in `stored_in.version`."""
        return self._for(dialect).version

    def expression(self, dialect: Dialect) -> ColumnElement[str]:
        """The document of the row, computed, as text, labelled `document`."""
        return self._for(dialect).expression

    def computed_sql_with(self, dialect: Dialect, replacing: Mapping[str, ColumnElement[Any]]) -> str:
        """SQL text of the document of a row as it is once the columns named in `replacing` hold the given
        SQL (literal text: no parameters): for an UPDATE that changes those columns and stores the document
        in the same statement (one new row version, not two). Stored with this shape's `version`."""
        return self._sql(dialect, _replaced(self.shape, self.table, replacing))

    def patched_sql_with(
        self, dialect: Dialect, replacing: Mapping[str, ColumnElement[Any]], *, only: str
    ) -> Patch:
        """For an UPDATE that changes only the columns of one small object of the document, the member named
        `only` (a name used once in the shape, holding numbers, booleans and timestamps): the stored text
        with that object rewritten in place instead of every member built again (the usage write on every
        delivery: about half its database CPU, bench/RESULTS.md). Valid only where `Patch.applies`: the
        row's stored document is of this shape and holds the member; other rows need `computed_sql_with`.

        The member is found by its name and the separator the dialect's JSON functions write after a name
        (`"current" : {`): no text from a row can forge that, since every name in a shape is a fixed string,
        no value is JSON taken from a row, and quotes inside JSON strings are escaped; the object ends at
        its first `}`, since none of its values holds one. The rest of the stored text stays as it was
        stored: every other write of a row stores its whole document."""
        if self.stored_in is None:
            raise ValueError("this document is not stored")
        builder = _builder(dialect)
        member = _only_member(_replaced(self.shape, self.table, replacing), only)
        stored = self.stored_in.document
        marker = _sql(_sql_string(f'"{only}"{builder.name_separator}{{'))
        marker_at = builder.position(stored, marker)
        object_start = marker_at + (len(only) + 2 + len(builder.name_separator))
        object_end = object_start + builder.position(func.substr(stored, object_start), _sql("'}'")) - 1
        rewritten = (
            func.substr(stored, 1, object_start - 1)
            .concat(builder.as_text(builder.object(member)))
            .concat(func.substr(stored, object_end + 1))
        )
        applies = and_(self.stored_in.version == self.version(dialect), marker_at > 0)
        return Patch(self._compiled_sql(dialect, applies), self._compiled_sql(dialect, rewritten))

    def _sql(self, dialect: Dialect, shape: Shape) -> str:
        builder = _builder(dialect)
        return self._compiled_sql(dialect, builder.as_text(builder.object(shape)))

    def _compiled_sql(self, dialect: Dialect, expression: ColumnElement[Any]) -> str:
        # Compiled inside a SELECT from the table, so that subqueries refer to its row (correlate).
        select_sql = str(
            select(expression.label("document"))
            .select_from(self.table)
            .compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        )
        head, tail = "SELECT ", f" AS document \nFROM {self.table.name}"
        if not (select_sql.startswith(head) and select_sql.endswith(tail)) or "%" in select_sql:
            # "%": the text reaches the driver as it is, so it must hold no parameter marker
            raise ValueError(f"unexpected SQL for a document: {select_sql[:80]}...")
        return select_sql[len(head) : -len(tail)]

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            sql = self._sql(dialect, self.shape)
            compiled = _Compiled(
                sql=sql,
                version=hashlib.sha256(sql.encode()).hexdigest()[:16],
                expression=literal_column(sql, type_=Text).label("document"),
            )
            self._compiled[dialect.name] = compiled
        return compiled

    def refresh_values(self, dialect: Dialect) -> dict[Column[Any], Any]:
        """Values for an UPDATE of `table` that store the rows' documents (see `stored_in`)."""
        if self.stored_in is None:
            raise ValueError("this document is not stored")
        return {
            self.stored_in.document: literal_column(self.computed_sql(dialect), type_=Text),
            self.stored_in.version: self.version(dialect),
        }


def _replaced(shape: Shape, table: Table, replacing: Mapping[str, ColumnElement[Any]]) -> Shape:
    """`shape` with the columns of `table` named in `replacing` replaced by the given SQL."""

    def value(item: Any) -> Any:
        if isinstance(item, Column) and item.table is table and item.key in replacing:
            return replacing[item.key]
        if isinstance(item, When):
            return When(item.condition, _replaced(item.shape, table, replacing))
        if isinstance(item, Optional):
            return Optional(value(item.value))
        if isinstance(item, Mapping):
            return _replaced(item, table, replacing)
        return item

    return {key: value(item) for key, item in shape.items()}


def _only_member(shape: Shape, name: str) -> Shape:
    """The object named `name` in `shape` (nested objects included), which must be its only member of that
    name and hold only values whose JSON text has no braces and no text from a row (`_BRACELESS_TYPES`)."""
    found: list[Any] = []

    def walk(level: Shape) -> None:
        for key, item in level.items():
            if key == name:
                found.append(item)
            if isinstance(item, When):
                walk(item.shape)
            elif isinstance(item, Mapping):
                walk(item)

    walk(shape)
    if len(found) != 1 or not isinstance(found[0], Mapping):
        raise ValueError(f"{name!r} is not the name of exactly one object of the document")
    for item in found[0].values():
        if not (isinstance(item, ColumnElement) and isinstance(item.type, _BRACELESS_TYPES)):
            raise ValueError(f"{name!r} holds a value that is no number, boolean or timestamp column")
    return found[0]


# The types whose JSON text (`_Builder.value`) has no braces and no text from a row.
_BRACELESS_TYPES = (Integer, Numeric, Boolean, UtcDateTime)


class _Builder:
    name_separator = ""  # what the dialect's JSON functions write between a member's name and its value

    def position(self, text: Any, part: Any) -> ColumnElement[int]:
        """Where `part` first starts in `text`, from 1; 0 where it does not occur."""
        raise NotImplementedError

    def object(self, shape: Shape) -> ColumnElement[Any]:
        required = {key: value for key, value in shape.items() if not isinstance(value, (When, Optional))}
        optional_keys = [key for key in shape if key not in required]
        if len(optional_keys) > MAX_OPTIONAL_MEMBERS:
            raise ValueError(f"more than {MAX_OPTIONAL_MEMBERS} optional members: {optional_keys}")
        if not optional_keys:
            return self._members(shape)
        branches = []
        # Every combination of present optional members, most present first; the last one is the ELSE.
        for present in itertools.product([True, False], repeat=len(optional_keys)):
            chosen = dict(zip(optional_keys, present, strict=True))
            members = {key: value for key, value in shape.items() if chosen.get(key, True)}
            test = and_(
                true(),
                *(
                    self._presence(shape[key]) if is_present else ~self._presence(shape[key])
                    for key, is_present in chosen.items()
                ),
            )
            branches.append((test, self._members(members)))
        *tested, (_, otherwise) = branches
        return case(*tested, else_=otherwise)

    def _presence(self, value: When | Optional) -> ColumnElement[bool]:
        return value.condition if isinstance(value, When) else value.value.is_not(None)

    def _members(self, shape: Shape) -> ColumnElement[Any]:
        arguments: list[Any] = []
        for key, value in shape.items():
            arguments += [_sql(_sql_string(key)), self.value(value)]
        return self.json_object(*arguments)

    def value(self, value: Any) -> Any:
        if isinstance(value, When):
            return self.object(value.shape)
        if isinstance(value, Optional):
            return self.value(value.value)
        if isinstance(value, OrderedArray):
            return self.array(value)
        if isinstance(value, Mapping):
            return self.object(value)
        if isinstance(value, bool):
            return self.boolean_constant(value)
        if isinstance(value, int):
            return _sql(str(value))
        if isinstance(value, str):
            return _sql(_sql_string(value))
        if isinstance(value.type, Boolean):
            return self.boolean(value)
        if isinstance(value.type, UtcDateTime):
            return self.timestamp(value)
        return value

    def json_object(self, *arguments: Any) -> ColumnElement[Any]:
        raise NotImplementedError

    def as_text(self, document: ColumnElement[Any]) -> ColumnElement[str]:
        raise NotImplementedError

    def boolean_constant(self, value: bool) -> Any:
        raise NotImplementedError

    def boolean(self, value: ColumnElement[bool]) -> Any:
        raise NotImplementedError

    def timestamp(self, value: ColumnElement[Any]) -> ColumnElement[str]:
        raise NotImplementedError

    def array(self, array: OrderedArray) -> ColumnElement[Any]:
        raise NotImplementedError


class _Sqlite(_Builder):
    name_separator = ":"

    def position(self, text: Any, part: Any) -> ColumnElement[int]:
        return func.instr(text, part)

    def json_object(self, *arguments: Any) -> ColumnElement[Any]:
        return func.json_object(*arguments)

    def as_text(self, document: ColumnElement[Any]) -> ColumnElement[str]:
        return document

    def boolean_constant(self, value: bool) -> Any:
        return func.json(_sql("'true'" if value else "'false'"))

    def boolean(self, value: ColumnElement[bool]) -> Any:
        # SQLite keeps booleans as 0/1; json() marks the literal as JSON for json_object.
        return case((value, self.boolean_constant(True)), (~value, self.boolean_constant(False)))

    def timestamp(self, value: ColumnElement[Any]) -> ColumnElement[str]:
        return value  # stored in the wire form already (`store.tables.UtcDateTime`)

    def array(self, array: OrderedArray) -> ColumnElement[Any]:
        # Ordered in a derived table (SQLite 3.40 has no ORDER BY inside an aggregate); it still refers to
        # the enclosing row, which SQLAlchemy leaves correlated only when told.
        rows = (
            select(array.value.label("value"))
            .where(array.where)
            .order_by(array.order_by)
            .correlate_except(array.value.table)
            .subquery()
        )
        return select(func.json_group_array(rows.c.value)).scalar_subquery()


class _Postgres(_Builder):
    name_separator = " : "

    def position(self, text: Any, part: Any) -> ColumnElement[int]:
        return func.strpos(text, part)

    def json_object(self, *arguments: Any) -> ColumnElement[Any]:
        return func.json_build_object(*arguments)

    def as_text(self, document: ColumnElement[Any]) -> ColumnElement[str]:
        # As text: the driver would otherwise parse the JSON into Python objects, the very cost avoided here.
        return cast(document, Text)

    def boolean_constant(self, value: bool) -> Any:
        return _sql("true" if value else "false")

    def boolean(self, value: ColumnElement[bool]) -> Any:
        return value

    def timestamp(self, value: ColumnElement[Any]) -> ColumnElement[str]:
        return func.to_char(func.timezone(_sql("'UTC'"), value), _sql("""'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""))

    def array(self, array: OrderedArray) -> ColumnElement[Any]:
        aggregated = func.json_agg(aggregate_order_by(array.value, array.order_by))
        return func.coalesce(select(aggregated).where(array.where).scalar_subquery(), _sql("'[]'::json"))


def _builder(dialect: Dialect) -> _Builder:
    return _Postgres() if dialect.name == "postgresql" else _Sqlite()


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql(fragment: str) -> ColumnElement[Any]:
    return literal_column(fragment)
