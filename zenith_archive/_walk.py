"""On MySQL/MariaDB, a free-text word answered by reading the newest jobs instead of the FULLTEXT index.

InnoDB's FULLTEXT search collects every job holding a word before it returns one, and each is then
read to order the page: a word a quarter of a million jobs hold costs seconds. So a search whose
results all hold one word first reads the newest jobs by key, newest first, within a window of
rows, keeping those whose text holds the word; a frequent word fills the page (or reaches the
count's cap) long before the window ends. When it does not, the FULLTEXT query answers as before.

The walk finds exactly the jobs the index would. A job matches the word when the index holds it
as a token of its text and the text contains it (:mod:`zenith_archive._compile`). For a word of
ASCII letters, digits and ``_`` and a text of ASCII only, the index's tokens are the runs of those
characters, compared ignoring case: ``REGEXP '\\bword\\b'`` says the same. A text with other
characters may hold a token equal to the word only under the collation (``prémium``), so a job
the walk is unsure of sends the query to the index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.engine import Connection

from zenith_archive._compile import Dialect, condition, mysql_exact_text
from zenith_archive.schema import jobs
from zenith_protocol.query import Query, Text

__all__ = ["COUNT_WINDOW", "PAGE_WINDOW", "Walk"]

PAGE_WINDOW = 5_000
"""Newest rows a page reads before leaving it to the index: a word 1 job in 100 holds fills 50."""
COUNT_WINDOW = 50_000
"""Newest rows a count reads to reach its cap (10,000 needs a word 1 job in 5 holds)."""
_ASCII_WORD = re.compile(r"[0-9A-Za-z_]+")


@dataclass(frozen=True)
class Walk:
    """The jobs matching a query whose results all hold ``word``, read newest first by key."""

    word: str
    rest: Query
    dialect: Dialect

    @classmethod
    def of(cls, query: Query, dialect: Dialect) -> Walk | None:
        """The walk of the first free-text term every result holds that is one ASCII word the index keeps.

        None: another database than MariaDB (MySQL's regular expressions and collations are not the
        ones this was checked against), or no such term (negated, inside an OR, several words,
        short, a stop word).
        """
        if not dialect.mariadb:
            return None
        for index, clause in enumerate(query.clauses):
            if isinstance(clause, Text) and not clause.negated and _indexed_word(clause.value, dialect):
                return cls(clause.value, Query(query.clauses[:index] + query.clauses[index + 1 :]), dialect)
        return None

    def _unsure(self) -> ColumnElement[bool]:
        """The row's text has a character outside ASCII: the walk cannot tell whether the index holds the word."""
        return func.octet_length(jobs.c.search_text) != func.char_length(jobs.c.search_text)

    def _statement(self, columns: Sequence[Any], below: int, window: int) -> Select[Any]:
        """Rows of ids in ``[below - window, below)`` holding the word, newest first; the last column: unsure."""
        token = jobs.c.search_text.regexp_match(rf"\b{self.word}\b", flags="i")
        held = and_(mysql_exact_text(self.word), or_(self._unsure(), token))
        window_ids = and_(jobs.c.id < below, jobs.c.id >= below - window)
        where = and_(window_ids, held, condition(self.rest, self.dialect))
        return select(*columns, self._unsure().label("unsure")).where(where).order_by(jobs.c.id.desc())

    def page(
        self, connection: Connection, columns: Sequence[Any], after: int | None, limit: int
    ) -> list[Sequence[Any]] | None:
        """Up to ``limit + 1`` rows of ``columns`` below key ``after``, or None when the index must answer."""
        below = _top(connection) if after is None else after
        rows = connection.execute(self._statement(columns, below, PAGE_WINDOW).limit(limit + 1)).all()
        if any(row[-1] for row in rows):
            return None
        if len(rows) <= limit and below - PAGE_WINDOW > 1:  # the window ended first: older jobs may match
            return None
        return [tuple(row)[:-1] for row in rows]

    def count(self, connection: Connection, cap: int) -> int | None:
        """How many jobs match, up to ``cap + 1``; None when the index must answer."""
        below = _top(connection)
        sample = self._count(connection, below, PAGE_WINDOW, cap)
        if sample is None or sample > cap or below - PAGE_WINDOW <= 1:
            return sample
        if sample * (COUNT_WINDOW // PAGE_WINDOW) <= cap:  # too rare to reach the cap within the window
            return None
        n = self._count(connection, below, COUNT_WINDOW, cap)
        return n if n is not None and (n > cap or below - COUNT_WINDOW <= 1) else None

    def _count(self, connection: Connection, below: int, window: int, cap: int) -> int | None:
        found = self._statement([literal(1)], below, window).limit(cap + 1).subquery()
        n, unsure = connection.execute(select(func.count(), func.coalesce(func.sum(found.c.unsure), 0))).one()
        return None if unsure else int(n)


def _indexed_word(value: str, dialect: Dialect) -> bool:
    """``value`` is one ASCII word the FULLTEXT index keeps (long enough, not a stop word)."""
    return (
        _ASCII_WORD.fullmatch(value) is not None
        and dialect.min_word <= len(value) <= dialect.max_word
        and value.lower() not in dialect.stopwords
    )


def _top(connection: Connection) -> int:
    """One more than the newest job's id: the first page's key."""
    return int(connection.execute(select(func.coalesce(func.max(jobs.c.id), 0) + 1)).scalar_one())
