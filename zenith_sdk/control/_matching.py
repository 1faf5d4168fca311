"""Which jobs match a filter: in Redis (the read-only match script) or here, from plain reads, alike.

A Redis user that may read but not run scripts (or a server without EVALSHA_RO) gets the same
matches: the chunk is read with LRANGE/ZRANGE and matched here by :meth:`JobFilter.matches`,
which reads a job the way the scripts' ``_filter.lua`` does (Lua's truth, numbers and text).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, model_validator

from zenith_protocol._json import dumps, loads
from zenith_protocol.errors import UnsupportedQueryError
from zenith_protocol.query import AnyOf, Clause, Query, Term, Text, TimeBound, parse
from zenith_sdk.control._entries import Source
from zenith_sdk.control._pick import read_chunk
from zenith_sdk.scripts import MATCH, ScriptArg, scripts_for

__all__ = ["ChunkMatch", "JobFilter", "match_chunk"]

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.I)
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_LUA_SPACE = " \t\n\r\f\v"
_ABSENT = object()
_PATH_PARTS = re.compile(r"[^.]+")


class JobFilter(BaseModel):
    """Which jobs match: every given condition must hold (none given: every job).

    Args:
        name: the job name, exactly.
        error: text the job's error contains.
        text: text the raw payload contains.
        field / value: a property equal to a value (``email:user@example.com``).
        from_ms / to_ms: failedAt (else createdAt) in ``[from_ms, to_ms)``.
        where: a condition tree as :meth:`from_query` builds it (see ``_filter.lua``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    error: str | None = None
    text: str | None = None
    field: str | None = None
    value: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    where: tuple[Any, ...] | None = None

    @model_validator(mode="after")
    def _field_needs_value(self) -> JobFilter:
        if (self.field is None) != (self.value is None):
            raise ValueError("a property filter needs both field and value, as in 'email:user@example.com'")
        return self

    @classmethod
    def from_query(cls, query: str | Query) -> JobFilter:
        """The filter of a query (grammar: :mod:`zenith_sdk.query`): every construct but ``queue:`` and ``state:``.

        Free text is looked for in the raw payload (case-sensitive), ``name:`` is the job name
        exactly, ``error:`` text in the error, ``id:`` the job id, ``key:value`` a property equal
        to the value (``a.b``: nested), ``after:``/``before:`` bound failedAt (else createdAt);
        ``-`` and ``OR`` combine them.

        Raises:
            QuerySyntaxError: the text does not parse.
            UnsupportedQueryError: the query names a queue or a state, which a filter of one
                queue's jobs in one state cannot decide (pass them as arguments instead).
        """
        parsed = parse(query) if isinstance(query, str) else query
        clauses = list(parsed.clauses)
        # The first plain word goes to "text", which the scripts check before decoding the job.
        first = next((c for c in clauses if isinstance(c, Text) and not c.negated), None)
        if first is not None:
            clauses.remove(first)
        where = [_condition(clause) for clause in clauses]
        return cls(
            text=first.value if first else None,
            where=None if not where else where[0] if len(where) == 1 else ("and", *where),
        )

    def to_wire(self) -> str:
        """The filter as the scripts read it (``_filter.lua``)."""
        wire: dict[str, Any] = {"name": self.name, "error": self.error, "text": self.text}
        wire.update({"field": self.field, "value": self.value, "from": self.from_ms, "to": self.to_ms})
        wire["where"] = self.where
        return dumps({key: value for key, value in wire.items() if value is not None})

    def matches(self, raw: bytes) -> bool:
        """Whether the entry ``raw`` matches, exactly as the scripts decide it."""
        if self.text is not None and self.text.encode("utf-8", "surrogateescape") not in raw:
            return False
        job = _table(raw.decode("utf-8", "surrogateescape"))
        if job is None:
            return False
        fields = job if isinstance(job, dict) else {}
        if self.error is not None:
            error = fields.get("error")
            if not (isinstance(error, str) and self.error in error):
                return False
        if not self._in_time_range(fields):
            return False
        if self.name is not None or self.field is not None:
            name, properties = _name_and_properties(fields)
            if self.name is not None and name != self.name:
                return False
            if self.field is not None:
                value = properties.get(self.field, _ABSENT) if isinstance(properties, dict) else _ABSENT
                if _property_text(value) != self.value:
                    return False
        return self.where is None or _holds(self.where, raw, fields)

    def _in_time_range(self, fields: dict[str, Any]) -> bool:
        if self.from_ms is None and self.to_ms is None:
            return True
        moment = _moment(fields)
        if moment is None:
            return False
        return (self.from_ms is None or moment >= self.from_ms) and (self.to_ms is None or moment < self.to_ms)


_LEAF_OPS = {"name": "name", "error": "error", "id": "id"}
_Condition = tuple[Any, ...] | list[Any]


def _condition(clause: Clause) -> tuple[Any, ...]:
    """A query clause as a condition of ``_filter.lua``'s tree."""
    if isinstance(clause, AnyOf):
        return ("or", *(_condition(term) for term in clause.terms))
    leaf = _leaf(clause)
    return ("not", leaf) if clause.negated else leaf


def _leaf(term: Term) -> tuple[Any, ...]:
    if isinstance(term, Text):
        return ("text", term.value)
    if isinstance(term, TimeBound):
        return ("from" if term.key == "after" else "to", term.at_ms)
    if term.key in _LEAF_OPS:
        return (_LEAF_OPS[term.key], term.value)
    if term.is_property:
        return ("field", term.key, term.value)
    raise UnsupportedQueryError(
        str(term), f"a filter of one queue's jobs in one state cannot choose by {term.key}: pass it as an argument"
    )


def _moment(fields: dict[str, Any]) -> float | None:
    """failedAt, else createdAt, as Lua's ``tonumber`` reads them."""
    moment = _lua_number(fields.get("failedAt"))
    return moment if moment is not None else _lua_number(fields.get("createdAt"))


def _holds(condition: _Condition, raw: bytes, fields: dict[str, Any]) -> bool:
    """Whether the job holds ``condition``, exactly as ``holds`` in ``_filter.lua`` decides it."""
    op, arg = condition[0], condition[1]
    if op in ("and", "or"):
        want = op == "or"
        return want if any(_holds(part, raw, fields) is want for part in condition[1:]) else not want
    if op == "not":
        return not _holds(arg, raw, fields)
    return _LEAVES[op](condition, raw, fields)


def _text_leaf(condition: _Condition, raw: bytes, fields: dict[str, Any]) -> bool:
    return str(condition[1]).encode("utf-8", "surrogateescape") in raw


def _error_leaf(condition: _Condition, raw: bytes, fields: dict[str, Any]) -> bool:
    error = fields.get("error")
    return isinstance(error, str) and condition[1] in error


def _id_leaf(condition: _Condition, raw: bytes, fields: dict[str, Any]) -> bool:
    return _property_text(fields.get("id", _ABSENT)) == str(condition[1])


def _time_leaf(condition: _Condition, raw: bytes, fields: dict[str, Any]) -> bool:
    moment = _moment(fields)
    if moment is None:
        return False
    bound = float(condition[1])
    return moment >= bound if condition[0] == "from" else moment < bound


def _name_leaf(condition: _Condition, raw: bytes, fields: dict[str, Any]) -> bool:
    name, _properties = _name_and_properties(fields)
    return bool(name == condition[1])


def _field_leaf(condition: _Condition, raw: bytes, fields: dict[str, Any]) -> bool:
    _name, properties = _name_and_properties(fields)
    return _property_text(_property_at(properties, str(condition[1]))) == str(condition[2])


_Leaf = Callable[[_Condition, bytes, dict[str, Any]], bool]
_LEAVES: dict[str, _Leaf] = {
    "text": _text_leaf,
    "error": _error_leaf,
    "id": _id_leaf,
    "from": _time_leaf,
    "to": _time_leaf,
    "name": _name_leaf,
    "field": _field_leaf,
}


def _property_at(properties: Any, path: str) -> Any:
    """``properties[path]``, else (for ``a.b``) ``properties.a.b``, as ``property_at`` in ``_filter.lua``."""
    if not isinstance(properties, dict):
        return _ABSENT
    value = properties.get(path, _ABSENT)
    if value is not _ABSENT or "." not in path:
        return value
    value = properties
    for part in _PATH_PARTS.findall(path):
        if not isinstance(value, dict):
            return _ABSENT
        value = value.get(part, _ABSENT)
    return value


def _table(text: str) -> dict[str, Any] | list[Any] | None:
    """``text`` decoded when it is a JSON object or array (a Lua table), else None."""
    try:
        value = loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Redis' decoder reads too
        return None
    return value if isinstance(value, (dict, list)) else None


def _name_and_properties(fields: dict[str, Any]) -> tuple[Any, Any]:
    """As ``_filter.lua`` reads them: ``data.job or data.class or className``, and ``data.properties``.

    In Lua a member holding JSON null is there (and true); only an absent or false one is passed over.
    """
    data = fields.get("data")
    decoded = _table(data) if isinstance(data, str) else None
    if decoded is None:
        return fields.get("className"), None
    inner = decoded if isinstance(decoded, dict) else {}
    for key in ("job", "class"):
        if key in inner and inner[key] is not False:
            return inner[key], inner.get("properties")
    return fields.get("className"), inner.get("properties")


def _lua_number(value: Any) -> float | None:
    """Lua's ``tonumber``: a number, or a string that spells one (decimal or hex); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip(_LUA_SPACE)
        if _DECIMAL.fullmatch(text):
            return float(text)
        if _HEX.fullmatch(text):
            return float(int(text, 16))
    return None


def _property_text(value: Any) -> str | None:
    """A property compared as text, as ``_filter.lua`` prints it (numbers as Lua does: ``%.14g``)."""
    if value is _ABSENT or isinstance(value, (dict, list)):
        return None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{float(value):.14g}"
    return str(value)


@dataclass(frozen=True)
class ChunkMatch:
    """What one chunk of a source held: entries looked at, matches, and the first of them (oldest first)."""

    looked_at: int
    matched: int
    sample: list[bytes]


def match_chunk(
    client: redis.Redis, source: Source, offset: int, chunk: int, job_filter: JobFilter, sample: int
) -> ChunkMatch:
    """The matches among ``chunk`` entries of ``source`` from ``offset``, with at most ``sample`` of them.

    One call of the read-only match script; for a client that may not run scripts, one read of
    the chunk matched here, with the same result.
    """
    args: list[ScriptArg] = [source.kind, offset, chunk, job_filter.to_wire(), sample]
    replies = scripts_for(client).read_only([(MATCH, [source.key], args)])
    if replies is not None:
        reply: list[Any] = replies[0]
        return ChunkMatch(int(reply[0]), int(reply[1]), [_as_bytes(raw) for raw in reply[2:]])
    entries = read_chunk(client, source.key, source.kind, offset, chunk)
    found = [raw for raw in entries if job_filter.matches(raw)]
    return ChunkMatch(len(entries), len(found), found[:sample])


def _as_bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
