"""The query language of live search and of the SQL archive: :func:`parse` turns text into a :class:`Query`.

Pure: no I/O. Both back ends (the control plane's live search, the archive's SQL) read the same
tree. The grammar::

    query     := clause*                       every clause must hold (terms are separated by spaces)
    clause    := term ("OR" term)*             at least one of the terms must hold
    term      := ["-"] (qualifier | text)      "-" negates the term
    qualifier := KEY ":" value                 queue: state: name: error: id: after: before:;
                                               any other key is a job property ("a.b": nested)
    text      := word | "exact phrase"         free text

A value or a word may be quoted, in whole or in part (``name:"Send Email"``); inside quotes
``\\"`` is a quote and ``\\\\`` a backslash. ``OR`` (upper case, unquoted) is the only keyword;
there are no parentheses, so ``a b OR c`` means ``a AND (b OR c)``. ``after:``/``before:`` take
an ISO-8601 date or datetime (UTC unless it carries an offset) or a time before now: ``90s``,
``30m``, ``2h``, ``7d``, ``2w``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from zenith_protocol.errors import QuerySyntaxError

__all__ = [
    "QUALIFIERS",
    "TIME_QUALIFIERS",
    "AnyOf",
    "Clause",
    "Field",
    "Query",
    "Term",
    "Text",
    "TimeBound",
    "iso_ms",
    "parse",
    "time_ms",
]

QUALIFIERS = ("queue", "state", "name", "error", "id")
"""The keys that name a job's own attributes; any other key is a property of the job's data."""
TIME_QUALIFIERS = ("after", "before")
"""``after:`` holds for jobs at or after the time, ``before:`` for jobs strictly before it."""

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_RELATIVE = re.compile(r"([0-9]{1,15})([smhdw])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MIN_MS = int(datetime(1, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
_MAX_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=timezone.utc).timestamp() * 1000)
_UNUSABLE = re.compile("[\x00\ud800-\udfff]")
_OR = "OR"
_BOUNDS: dict[str, Literal["after", "before"]] = {"after": "after", "before": "before"}


def _needs_quotes(value: str) -> bool:
    return not value or '"' in value or any(ch.isspace() for ch in value)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value_text(value: str) -> str:
    """A qualifier's value as the parser reads it back: bare when it can be, else quoted with escapes."""
    return _quote(value) if _needs_quotes(value) else value


@dataclass(frozen=True)
class Text:
    """Free text (a word or a quoted phrase) the job must contain; ``negated``: must not contain."""

    value: str
    negated: bool = False

    def __post_init__(self) -> None:
        if not self.value:
            raise ValueError("free text cannot be empty")

    def __str__(self) -> str:
        value = self.value
        # A bare word that starts with '-', holds a ':' or is OR would read back as something else.
        plain = not (_needs_quotes(value) or value.startswith("-") or ":" in value or value == _OR)
        return f"{'-' if self.negated else ''}{value if plain else _quote(value)}"


@dataclass(frozen=True)
class Field:
    """``key:value``: a qualifier (:data:`QUALIFIERS`) or a job property equal to ``value``."""

    key: str
    value: str
    negated: bool = False

    def __post_init__(self) -> None:
        _check_key(self.key)
        if not self.value:
            raise ValueError(f"{self.key}: needs a value")
        if self.key in TIME_QUALIFIERS:
            raise ValueError(f"{self.key}: is a time bound (TimeBound), not a field")

    @property
    def is_property(self) -> bool:
        """Whether the key names a property of the job's data rather than one of :data:`QUALIFIERS`."""
        return self.key not in QUALIFIERS

    def __str__(self) -> str:
        return f"{'-' if self.negated else ''}{self.key}:{_value_text(self.value)}"


@dataclass(frozen=True)
class TimeBound:
    """``after:`` (at or after ``at_ms``) or ``before:`` (strictly before ``at_ms``); ``text`` as written."""

    key: Literal["after", "before"]
    at_ms: int
    text: str
    negated: bool = False

    def __post_init__(self) -> None:
        if self.key not in TIME_QUALIFIERS:
            raise ValueError(f"a time bound is after: or before:, not {self.key}:")
        if not self.text:
            raise ValueError(f"{self.key}: needs a time")

    def __str__(self) -> str:
        return f"{'-' if self.negated else ''}{self.key}:{_value_text(self.text)}"


Term = Text | Field | TimeBound
"""One condition."""


@dataclass(frozen=True)
class AnyOf:
    """``a OR b OR ...``: at least one of two or more terms holds."""

    terms: tuple[Term, ...]

    def __post_init__(self) -> None:
        if len(self.terms) < 2:
            raise ValueError("OR joins at least two terms")

    def __str__(self) -> str:
        return f" {_OR} ".join(str(term) for term in self.terms)


Clause = Term | AnyOf
"""What a query is made of: every clause must hold."""


@dataclass(frozen=True)
class Query:
    """A parsed query: every clause must hold (no clauses: every job matches). ``str()`` gives it back as text."""

    clauses: tuple[Clause, ...] = ()

    def __str__(self) -> str:
        return " ".join(str(clause) for clause in self.clauses)

    def terms(self) -> Iterator[Term]:
        """Every term of every clause, in order."""
        for clause in self.clauses:
            yield from clause.terms if isinstance(clause, AnyOf) else (clause,)

    def bind(self, known: Mapping[str, str]) -> Query | None:
        """The query once the qualifiers in ``known`` (say ``{"queue": "mail"}``) are decided.

        Returns None when the query cannot hold, else the clauses that remain to be checked
        (none: it holds for every job). What a live search uses to pick the keys it reads.
        """
        remaining: list[Clause] = []
        for clause in self.clauses:
            terms = clause.terms if isinstance(clause, AnyOf) else (clause,)
            decided = [_decided(term, known) for term in terms]
            if True in decided:
                continue
            left = tuple(term for term, outcome in zip(terms, decided) if outcome is None)
            if not left:
                return None
            remaining.append(left[0] if len(left) == 1 else AnyOf(left))
        return Query(tuple(remaining))


def _decided(term: Term, known: Mapping[str, str]) -> bool | None:
    if isinstance(term, Field) and term.key in known:
        return (known[term.key] == term.value) is not term.negated
    return None


def _check_key(key: str) -> None:
    if not key or key.startswith("-") or '"' in key or ":" in key or any(ch.isspace() for ch in key):
        raise ValueError(f"{key!r} cannot be a key: use letters, digits, '_' or '.', not starting with '-'")


def iso_ms(text: str) -> int | None:
    """An ISO-8601 date (midnight UTC) or datetime (UTC unless it carries an offset) in epoch ms, or None."""
    # Python 3.10 reads no trailing "Z"; a time without an offset is taken as UTC.
    value = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        return None


def _time_ms(value: str, position: int, now_ms: int) -> int:
    relative = _RELATIVE.fullmatch(value)
    if relative:
        at_ms: int | None = now_ms - int(relative[1]) * _UNIT_MS[relative[2]]
    else:
        at_ms = iso_ms(value) if value[:1].isdigit() else None
    if at_ms is None:
        raise QuerySyntaxError(
            f"{value!r} is not a time: write an ISO-8601 date or datetime (2026-01-31, 2026-01-31T12:00:00Z) "
            "or a time before now (30m, 2h, 7d)",
            position,
        )
    if not _MIN_MS <= at_ms <= _MAX_MS:
        raise QuerySyntaxError(f"{value!r} is out of range: use a time between the years 1 and 9999", position)
    return at_ms


def time_ms(text: str, *, now_ms: int | None = None) -> int:
    """The time an ``after:``/``before:`` value names, in epoch ms: ISO-8601, or before ``now_ms`` (``2h``).

    Raises:
        QuerySyntaxError: ``text`` is neither (position 0).
    """
    return _time_ms(text, 0, int(time.time() * 1000) if now_ms is None else now_ms)


@dataclass
class _Piece:
    text: str
    quoted: bool
    position: int


@dataclass
class _Token:
    start: int
    negated: bool
    pieces: list[_Piece]


class _Parser:
    def __init__(self, text: str, now_ms: int) -> None:
        self.text = text
        self.now_ms = now_ms

    def query(self) -> Query:
        clauses: list[Clause] = []
        or_at: int | None = None
        for token in self._tokens():
            if not token.negated and len(token.pieces) == 1 and token.pieces[0] == _Piece(_OR, False, token.start):
                if not clauses or or_at is not None:
                    raise QuerySyntaxError("OR needs a term on each side, as in 'a OR b'", token.start)
                or_at = token.start
                continue
            term = self._term(token)
            if or_at is None:
                clauses.append(term)
                continue
            last = clauses.pop()
            clauses.append(AnyOf((*(last.terms if isinstance(last, AnyOf) else (last,)), term)))
            or_at = None
        if or_at is not None:
            raise QuerySyntaxError("OR needs a term on each side, as in 'a OR b'", or_at)
        return Query(tuple(clauses))

    def _tokens(self) -> Iterator[_Token]:
        text, end = self.text, len(self.text)
        at = 0
        while True:
            while at < end and text[at].isspace():
                at += 1
            if at >= end:
                return
            start = at
            negated = text[at] == "-"
            if negated:
                at += 1
                if at >= end or text[at].isspace():
                    raise QuerySyntaxError("'-' must be followed by what to leave out, as in -word", start)
            pieces: list[_Piece] = []
            while at < end and not text[at].isspace():
                if text[at] == '"':
                    value, after = self._quoted(at)
                    pieces.append(_Piece(value, True, at))
                else:
                    after = at
                    while after < end and not text[after].isspace() and text[after] != '"':
                        after += 1
                    pieces.append(_Piece(text[at:after], False, at))
                at = after
            yield _Token(start, negated, pieces)

    def _quoted(self, start: int) -> tuple[str, int]:
        """The text of the quotes opening at ``start`` and the position after them."""
        text, end = self.text, len(self.text)
        out: list[str] = []
        at = start + 1
        while at < end:
            char = text[at]
            if char == "\\" and at + 1 < end and text[at + 1] in '"\\':
                out.append(text[at + 1])
                at += 2
                continue
            if char == '"':
                return "".join(out), at + 1
            out.append(char)
            at += 1
        raise QuerySyntaxError('unbalanced quote: close it with another ", or write \\" for a quote in quotes', start)

    def _term(self, token: _Token) -> Term:
        first = token.pieces[0]
        colon = -1 if first.quoted else first.text.find(":")
        if colon > 0:
            key = first.text[:colon]
            value = first.text[colon + 1 :] + "".join(piece.text for piece in token.pieces[1:])
            value_at = first.position + colon + 1
            if key.startswith("-"):
                raise QuerySyntaxError(f"{key!r} cannot be a key: a key does not start with '-'", first.position)
            if not value:
                raise QuerySyntaxError(f'{key}: needs a value, as in {key}:value (or {key}:"two words")', value_at)
            bound = _BOUNDS.get(key)
            if bound is not None:
                return TimeBound(bound, _time_ms(value, value_at, self.now_ms), value, token.negated)
            return Field(key, value, token.negated)
        value = "".join(piece.text for piece in token.pieces)
        if not value:
            raise QuerySyntaxError('empty quotes: put the phrase between them, as in "exact phrase"', first.position)
        return Text(value, token.negated)


def parse(text: str, *, now_ms: int | None = None) -> Query:
    """The query ``text`` as a :class:`Query`; relative times (``2h``) count back from ``now_ms`` (default: now).

    Raises:
        QuerySyntaxError: the text is not a query (an unbalanced quote, a qualifier without a
            value, a time that does not read, a dangling OR or '-'); it carries the position.
    """
    bad = _UNUSABLE.search(text)
    if bad:
        what = "a NUL character" if bad[0] == "\x00" else "a character that is not valid Unicode"
        raise QuerySyntaxError(f"the query holds {what}: remove it", bad.start())
    return _Parser(text, int(time.time() * 1000) if now_ms is None else now_ms).query()
