"""Which jobs match a filter: in Redis (the read-only match script) or here, from plain reads, alike.

A Redis user that may read but not run scripts (or a server without EVALSHA_RO) gets the same
matches: the chunk is read with LRANGE/ZRANGE and matched here by :meth:`JobFilter.matches`,
which reads a job the way the scripts' ``_filter.lua`` does (Lua's truth, numbers and text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, model_validator

from zenith_protocol._json import dumps, loads
from zenith_sdk.control._entries import Source
from zenith_sdk.control._pick import read_chunk
from zenith_sdk.scripts import MATCH, ScriptArg, scripts_for

__all__ = ["ChunkMatch", "JobFilter", "match_chunk"]

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)", re.I)
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_LUA_SPACE = " \t\n\r\f\v"
_ABSENT = object()


class JobFilter(BaseModel):
    """Which jobs match: every given condition must hold (none given: every job).

    Args:
        name: the job name, exactly.
        error: text the job's error contains.
        text: text the raw payload contains.
        field / value: a property equal to a value (``email:user@example.com``).
        from_ms / to_ms: failedAt (else createdAt) in ``[from_ms, to_ms)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    error: str | None = None
    text: str | None = None
    field: str | None = None
    value: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None

    @model_validator(mode="after")
    def _field_needs_value(self) -> JobFilter:
        if (self.field is None) != (self.value is None):
            raise ValueError("a property filter needs both field and value, as in 'email:user@example.com'")
        return self

    @classmethod
    def from_query(cls, query: str) -> JobFilter:
        """``field:value`` filters on a property; any other text is looked for in the payload."""
        name, sep, value = query.partition(":")
        if sep and name and value and " " not in name:
            return cls(field=name, value=value)
        return cls(text=query)

    def to_wire(self) -> str:
        """The filter as the scripts read it (``_filter.lua``)."""
        wire: dict[str, str | int | None] = {"name": self.name, "error": self.error, "text": self.text}
        wire.update({"field": self.field, "value": self.value, "from": self.from_ms, "to": self.to_ms})
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
        if self.name is None and self.field is None:
            return True
        name, properties = _name_and_properties(fields)
        if self.name is not None and name != self.name:
            return False
        if self.field is not None:
            value = properties.get(self.field, _ABSENT) if isinstance(properties, dict) else _ABSENT
            return _property_text(value) == self.value
        return True

    def _in_time_range(self, fields: dict[str, Any]) -> bool:
        if self.from_ms is None and self.to_ms is None:
            return True
        moment = _lua_number(fields.get("failedAt"))
        if moment is None:
            moment = _lua_number(fields.get("createdAt"))
        if moment is None:
            return False
        return (self.from_ms is None or moment >= self.from_ms) and (self.to_ms is None or moment < self.to_ms)


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
