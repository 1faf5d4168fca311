"""The archiver's many-row statements, compiled once per database and sent to the driver's ``executemany``.

SQLAlchemy builds the parameters of every row of a Core ``execute(statement, rows)`` anew (a dict
per row, then its compiled form); for thousands of rows per batch that costs more than the
database's own work. Here each statement is compiled once per dialect with positional
placeholders (``?`` on SQLite, ``%s`` on psycopg and PyMySQL) and its rows are plain tuples. The
SQL is the one Core would send (the same compiler, quoting and casts), and the columns' own bind
processors still convert values (a ``DateTime`` on SQLite becomes the text SQLAlchemy stores).
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["BulkStatement", "bulk_statement"]

_POSITIONAL = {"qmark": "qmark", "numeric": "qmark", "named": "qmark", "format": "format", "pyformat": "format"}
_cache: weakref.WeakKeyDictionary[Dialect, dict[str, BulkStatement]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@dataclass(frozen=True)
class BulkStatement:
    """A compiled statement whose rows are tuples in the order of :attr:`names`."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]

    def run(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Execute the statement once per row (one ``executemany``); nothing when ``rows`` is empty."""
        if not rows:
            return
        if self.processors:
            rows = [self._process(row) for row in rows]
        connection.exec_driver_sql(self.sql, list(rows))

    def _process(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for index, processor in self.processors:
            values[index] = processor(values[index])
        return tuple(values)


def _compile(dialect: Dialect, statement: ClauseElement, names: tuple[str, ...]) -> BulkStatement:
    positional = copy.copy(dialect)
    positional.paramstyle = _POSITIONAL.get(dialect.paramstyle, "qmark")
    positional.positional = True
    compiled = statement.compile(dialect=positional, column_keys=list(names))
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"{type(statement).__name__} does not compile to SQL")
    order = tuple(compiled.positiontup or ())
    if order != names:
        raise ValueError(f"declare the columns in the order the SQL binds them: {order}, not {names}")
    processors = compiled._bind_processors  # the per-column converters Core would apply
    found: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(names):
        processor = processors.get(name)
        if processor is None:
            continue
        if not callable(processor):  # one per element of an expanding IN, which bulk rows never have
            raise TypeError(f"column {name!r} binds a list; bulk statements take one value per column")
        found.append((index, processor))
    return BulkStatement(compiled.string, names, tuple(found))


def bulk_statement(
    connection: Connection, key: str, build: Callable[[Connection], ClauseElement], names: Sequence[str]
) -> BulkStatement:
    """The statement ``build(connection)`` binding ``names``, compiled once per dialect (``key`` names it)."""
    dialect = connection.dialect
    with _lock:
        statements = _cache.setdefault(dialect, {})
        found = statements.get(key)
    if found is None:
        found = _compile(dialect, build(connection), tuple(names))
        with _lock:
            statements[key] = found
    return found
