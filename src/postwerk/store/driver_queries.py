"""Prebuilt statements run on the database driver's cursor directly.

SQLAlchemy's execution path (events, parameter processing, result metadata) costs about as much as a
small indexed query itself on SQLite. For the few reads on every API request and the usage write on every
delivery, whose values need no type processing (text, numbers, booleans, aware datetimes on PostgreSQL),
the statement is compiled once per dialect and its SQL text run on the driver connection beneath the
SQLAlchemy connection, which keeps owning the connection and its transaction state.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import UpdateBase

Statement = Select[Any] | CompoundSelect[Any] | UpdateBase

_Prepared = tuple[Any, tuple[str, ...] | None, Any]
_PREPARED: dict[tuple[str, int], _Prepared] = {}


def driver_rows(connection: Connection, statement: Statement, parameters: Mapping[str, Any]) -> list[Any]:
    """The rows of `statement` (which must be long-lived: it is compiled once; a write returns the rows of
    its RETURNING), as named tuples.

    Values go and come as the driver takes and gives them: SQLite booleans are 0 and 1.
    """
    dialect = connection.dialect
    key = (dialect.name, id(statement))
    prepared = _PREPARED.get(key)
    if prepared is None:
        prepared = _PREPARED[key] = _prepare(statement, dialect)
    compiled, order, row_type = prepared
    values = compiled.construct_params(parameters)  # with the values of the statement's own literals
    arguments: Any = values if order is None else tuple(values[name] for name in order)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.string, arguments)
        return [row_type._make(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _prepare(statement: Statement, dialect: Dialect) -> _Prepared:
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("statements with parameters expanded at execution cannot run on the driver")
    keys = statement.exported_columns.keys()  # a column collection iterates over its columns, not names
    names = [str(name) for name in keys]
    order = tuple(compiled.positiontup) if compiled.positional else None
    return compiled, order, namedtuple("DriverRow", names, rename=True)
