"""A parsed query (:mod:`zenith_protocol.query`) as a SQL condition on ``zenith_jobs``, per dialect.

Free text goes to the dialect's full-text index, built so that no text can make the database
report a syntax error: SQLite gets an FTS5 phrase string (quotes doubled), PostgreSQL a quoted
phrase for ``websearch_to_tsquery`` (which accepts any text), MySQL/MariaDB only the term's word
tokens, each ``+word`` (no operator character ever reaches ``AGAINST``). Where the index cannot
answer, a ``LIKE`` on ``search_text`` does: a term with no word in it (``-``, an emoji) on every
dialect, and on MySQL the exact text of every term (its FULLTEXT index drops short words and
stop words, so it only narrows). ``key:value`` looks the normalised value up in
``zenith_job_fields``; the qualifiers compare columns; ``after:``/``before:`` bound ``updated_at``.

Every condition is built never to be NULL, so that ``-term`` (NOT) keeps the jobs a column is
NULL for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, cast, func, literal_column, not_, or_, select, true
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import REGCONFIG, TSVECTOR
from sqlalchemy.engine import Connection

from zenith_archive.fields import normalize_value
from zenith_archive.fts import FTS_CONFIG, PG_TSV_COLUMN, SQLITE_FTS_TABLE, sqlite_fts
from zenith_archive.schema import ALL_STATES, State, job_fields, jobs
from zenith_protocol.errors import UnsupportedQueryError
from zenith_protocol.query import AnyOf, Clause, Field, Query, Term, Text, TimeBound

__all__ = ["Dialect", "condition", "mysql_exact_text", "sqlite_text_driver"]

_WORD = re.compile(r"[^\W_]")
"""A character FTS5's unicode61 and PostgreSQL's parser both read as part of a word."""
_MYSQL_WORDS = re.compile(r"\w+")
"""Words as MySQL's full-text parser cuts them (letters, digits and '_')."""
_INNODB_STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the this to was what when where "
    "who will with und www".split()
)
"""InnoDB's default stop words (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD): a ``+word`` of them matches nothing."""


@dataclass(frozen=True)
class Dialect:
    """What the compiled SQL depends on: the database kind and, on MySQL, which words its index holds."""

    name: str
    """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included)."""
    min_word: int = 3
    max_word: int = 84
    stopwords: frozenset[str] = _INNODB_STOPWORDS
    mariadb: bool = False
    """MariaDB rather than MySQL (their regular expressions and collations differ)."""

    @classmethod
    def of(cls, connection: Connection) -> Dialect:
        """The dialect of ``connection``; on MySQL it reads the server's full-text word sizes."""
        name = connection.dialect.name
        if name in ("mysql", "mariadb"):
            row = connection.exec_driver_sql(
                "SELECT @@innodb_ft_min_token_size, @@innodb_ft_max_token_size, @@innodb_ft_enable_stopword"
            ).one()
            stopwords = _INNODB_STOPWORDS if row[2] else frozenset()
            return cls(
                "mysql", int(row[0]), int(row[1]), stopwords, bool(getattr(connection.dialect, "is_mariadb", False))
            )
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"the archive runs on SQLite, PostgreSQL and MySQL/MariaDB, not on {name!r}")
        return cls(name)


def condition(query: Query, dialect: Dialect) -> ColumnElement[bool]:
    """The SQL condition on ``zenith_jobs`` that holds for the jobs ``query`` matches.

    Raises:
        UnsupportedQueryError: ``state:`` names a state the archive does not have.
    """
    if not query.clauses:
        return true()
    return and_(*(_clause(clause, dialect) for clause in query.clauses))


def _clause(clause: Clause, dialect: Dialect) -> ColumnElement[bool]:
    if isinstance(clause, AnyOf):
        return or_(*(_clause(term, dialect) for term in clause.terms))
    found = _term(clause, dialect)
    return not_(found) if clause.negated else found


def _term(term: Term, dialect: Dialect) -> ColumnElement[bool]:
    if isinstance(term, Text):
        return _text(term.value, dialect)
    if isinstance(term, TimeBound):
        moment = jobs.c.updated_at
        bound = moment >= term.at_ms if term.key == "after" else moment < term.at_ms
        return and_(moment.is_not(None), bound)
    return _field(term)


def _field(term: Field) -> ColumnElement[bool]:
    if term.key == "queue":
        return jobs.c.queue == term.value
    if term.key == "state":
        if term.value not in ALL_STATES:
            states = ", ".join(ALL_STATES)
            why = f"the archive's states are {states} (state:failed finds dead-lettered jobs too, state:dead only them)"
            raise UnsupportedQueryError(str(term), why)
        if term.value == State.FAILED:
            # What the live console lists as failed is the dead-letter list: "failed" takes both.
            return jobs.c.state.in_((State.FAILED, State.DEAD))
        return jobs.c.state == term.value
    if term.key == "id":
        return jobs.c.job_id == term.value
    if term.key == "name":
        return and_(jobs.c.name.is_not(None), jobs.c.name == term.value)
    if term.key == "error":
        return _contains(jobs.c.error, term.value)
    lookup = select(job_fields.c.job_pk).where(
        job_fields.c.key == term.key, job_fields.c.value_norm == normalize_value(term.value)
    )
    return jobs.c.id.in_(lookup)


def _contains(column: ColumnElement[str], value: str) -> ColumnElement[bool]:
    """``column`` holds ``value``, ignoring case; false (not NULL) when the column is NULL."""
    return and_(column.is_not(None), column.icontains(value, autoescape=True))


def _text(value: str, dialect: Dialect) -> ColumnElement[bool]:
    if dialect.name == "mysql":
        return _mysql_text(value, dialect)
    if not _WORD.search(value):
        return _contains(jobs.c.search_text, value)
    if dialect.name == "sqlite":
        return jobs.c.id.in_(select(sqlite_fts.c.rowid).where(_sqlite_match(value)))
    # A quoted phrase: websearch_to_tsquery reads no operator inside quotes (a quote of the term is a space).
    phrase = '"' + value.replace('"', " ") + '"'
    tsquery = func.websearch_to_tsquery(cast(FTS_CONFIG, REGCONFIG), phrase)
    vector = literal_column(f"{jobs.name}.{PG_TSV_COLUMN}", type_=TSVECTOR)
    return vector.bool_op("@@")(tsquery)


def _sqlite_match(value: str) -> ColumnElement[bool]:
    """``zenith_jobs_fts MATCH`` the phrase ``value`` (its quotes doubled: no text is an FTS5 syntax error)."""
    return literal_column(SQLITE_FTS_TABLE).op("MATCH")('"' + value.replace('"', '""') + '"')


def sqlite_text_driver(query: Query, dialect: Dialect) -> tuple[ColumnElement[bool], Query] | None:
    """On SQLite, the FTS5 match of the first free-text term every result holds, and the query without it.

    A term qualifies when it is not negated, not inside an OR and has a word. A search may then
    read ``zenith_jobs_fts`` in rowid order, joined to ``zenith_jobs``, and stop at the page:
    ``id IN (matches)`` would first collect every match, all 250,000 of a common word in a
    million jobs. None: no such term, or another dialect.
    """
    if dialect.name != "sqlite":
        return None
    for index, clause in enumerate(query.clauses):
        if isinstance(clause, Text) and not clause.negated and _WORD.search(clause.value):
            rest = query.clauses[:index] + query.clauses[index + 1 :]
            return _sqlite_match(clause.value), Query(rest)
    return None


def mysql_exact_text(value: str) -> ColumnElement[bool]:
    """On MySQL, the jobs whose text contains ``value`` (ignoring case): what a term's FULLTEXT match narrows."""
    return _contains(jobs.c.search_text, value)


def _mysql_text(value: str, dialect: Dialect) -> ColumnElement[bool]:
    exact = mysql_exact_text(value)
    words = [
        word
        for word in dict.fromkeys(_MYSQL_WORDS.findall(value.lower()))
        if dialect.min_word <= len(word) <= dialect.max_word and word not in dialect.stopwords
    ]
    if not words:
        return exact
    against = " ".join(f"+{word}" for word in words)
    indexed: ColumnElement[bool] = mysql.match(jobs.c.search_text, against=against).in_boolean_mode() > 0
    return and_(indexed, exact)
