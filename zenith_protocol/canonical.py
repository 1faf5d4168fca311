"""What a conforming writer writes, and where a stored value departs from it.

The tables here are the one place the writer rules of PROTOCOL.md live in code: the members a
canonical writer always writes (4.1, 5.2, 6.1, 6.3, 7, 8.3), the members each event type must
carry (8.4), the only field of an events stream entry (8.1) and the TTL of every expiring key
(3.3). :func:`check_canonical` re-encodes a decoded value with this package's encoder and
compares it byte for byte with what was stored, and checks those members; a value without
``protocolVersion`` (legacy) is never held to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from zenith_protocol import _json
from zenith_protocol.codec import CODECS, encode_job
from zenith_protocol.events import EVENT_FIELD, EventType
from zenith_protocol.jobs import JobPayload, JobType
from zenith_protocol.keys import CONSOLE_TASK_TTL_S, KeyKind
from zenith_protocol.pulse import PULSE_TTL_S
from zenith_protocol.schedules import SCHEDULE_LOCK_TTL_S
from zenith_protocol.workers import HEARTBEAT_TTL_S

__all__ = [
    "ALWAYS_WRITTEN",
    "COUNTER_TTL_S",
    "EVENT_REQUIRED_FIELDS",
    "KEY_TTL_S",
    "LEGACY_HEARTBEAT_TTL_S",
    "STREAM_ENTRY_FIELDS",
    "Deviation",
    "check_canonical",
    "first_difference",
]

COUNTER_TTL_S = 3600
"""TTL of the throughput counters and sparkline samples (6.4, 6.5)."""

LEGACY_HEARTBEAT_TTL_S = 10
"""TTL the Node consumer gives its heartbeat (6.2)."""

ALWAYS_WRITTEN: Mapping[str, tuple[str, ...]] = {
    "job": ("id", "type", "data", "createdAt", "attempts", "protocolVersion"),
    "heartbeat": (
        *("id", "hostname", "pid", "uptime", "memory", "queues", "concurrency", "timestamp", "loadAvg"),
        "protocolVersion",
    ),
    "log": ("level", "message", "timestamp", "protocolVersion"),
    "pulse": (
        *("id", "service", "language", "version", "pid", "hostname", "platform"),
        *("cpu", "memory", "runtime", "timestamp", "protocolVersion"),
    ),
    "event": ("type", "queue", "timestamp", "protocolVersion"),
    "schedule": ("id", "cron", "queue", "job", "enabled", "protocolVersion"),
}
"""Top-level members a canonical writer writes in every value of a structure: the required ones and
those the field tables mark "always written" (PROTOCOL.md 4.1, 5.2, 6.1, 6.3, 7, 8.3)."""

EVENT_REQUIRED_FIELDS: Mapping[EventType, tuple[str, ...]] = {
    EventType.ENQUEUED: ("jobId",),
    EventType.STARTED: ("jobId", "workerId", "attempt"),
    EventType.COMPLETED: ("jobId", "workerId", "attempt"),
    EventType.FAILED: ("jobId", "attempt", "error"),
    EventType.RETRIED: ("jobId",),
    EventType.DEAD_LETTERED: ("jobId", "error"),
    EventType.DELETED: ("jobId", "actor"),
    EventType.PROMOTED: ("jobId", "actor"),
    EventType.RECOVERED: ("count",),
    EventType.OPERATOR: ("actor", "action", "count"),
    EventType.ALERT: ("ruleId", "subject", "toState", "seq"),
}
"""Members each event type MUST carry besides those of every event (PROTOCOL.md 8.4)."""

STREAM_ENTRY_FIELDS: tuple[str, ...] = (EVENT_FIELD,)
"""The fields of an events stream entry; writers add no other (PROTOCOL.md 8.1)."""

KEY_TTL_S: Mapping[KeyKind, int | None] = {
    KeyKind.RATE_LIMIT: None,
    KeyKind.SCHEDULE_LOCK: SCHEDULE_LOCK_TTL_S,
    KeyKind.LEGACY_WORKER: LEGACY_HEARTBEAT_TTL_S,
    KeyKind.WORKER: HEARTBEAT_TTL_S,
    KeyKind.THROUGHPUT: COUNTER_TTL_S,
    KeyKind.METRIC: COUNTER_TTL_S,
    KeyKind.PULSE: PULSE_TTL_S,
    KeyKind.LEGACY_PULSE: PULSE_TTL_S,
    KeyKind.SWEEP_LOCK: None,
    KeyKind.ALERT_DELIVERED: None,
    KeyKind.CONSOLE_TASK: CONSOLE_TASK_TTL_S,
}
"""Keys written with a TTL (PROTOCOL.md 3.3) and its length in seconds; ``None``: the length varies
(a rate-limit window, the recovery interval, a sender's delivered-marker TTL). Every other key has none."""

DeviationKind = Literal["not_canonical", "missing_field", "forbidden_field"]


@dataclass(frozen=True)
class Deviation:
    """How a stored value departs from what a canonical writer writes.

    Attributes:
        kind: ``not_canonical`` (the bytes differ from the re-encoding), ``missing_field`` (a member
            the writer must write is absent) or ``forbidden_field`` (a stream entry field no writer adds).
        problem: what differs, in a few words (``field order``, ``number form``, ...): entries with
            the same problem are one finding.
        reason: one sentence saying what is wrong and which rule says so.
        field: the hash or stream-entry field whose value is concerned (``None``: the whole value).
        offset: the first byte (of that field's value) where ours and theirs differ, if they do.
        ours: the canonical bytes (empty when there are none to show).
        theirs: the stored bytes.
    """

    kind: DeviationKind
    problem: str
    reason: str
    field: str | None = None
    offset: int | None = None
    ours: bytes = b""
    theirs: bytes = b""


def _raw_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return bytes(value)


def first_difference(ours: bytes, theirs: bytes) -> int | None:
    """The offset of the first byte where ``ours`` and ``theirs`` differ (``None``: they are equal)."""
    if ours == theirs:
        return None
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return index
    return min(len(ours), len(theirs))


def check_canonical(structure: str, raw: Any, decoded: Any) -> Deviation | None:
    """Compare a stored value with the canonical form of what it decoded to.

    ``raw`` is the value as Redis returned it (text or bytes; a field map for a hash or stream
    entry) and ``decoded`` what :data:`~zenith_protocol.codec.CODECS` decoded from it. Returns the
    first deviation found, or ``None`` when the value is canonical, legacy (no
    ``protocolVersion``; but a stream entry never carries fields other than ``event``) or of a
    structure without a version (counters, flags, rule arrays).
    """
    if structure == "event_fields":
        return _check_stream_entry(raw, decoded)
    if getattr(decoded, "is_legacy", True):
        return None
    if structure == "schedule":
        return _check_schedule(raw, decoded)
    codec = CODECS[structure]
    if codec.input_kind != "json":
        return None
    return _check_json(structure, _raw_bytes(raw), decoded, codec.encode(decoded).encode("utf-8", "surrogatepass"))


def _check_stream_entry(raw: Mapping[Any, Any], decoded: Any) -> Deviation | None:
    names = [name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name) for name in raw]
    extra = [name for name in names if name not in STREAM_ENTRY_FIELDS]
    if extra:
        listed = ", ".join(repr(name) for name in extra)
        reason = f"the stream entry has field(s) {listed} besides {EVENT_FIELD!r}; writers add no other (spec 8.1)"
        return Deviation("forbidden_field", "extra stream entry field", reason, field=extra[0])
    if decoded.is_legacy:
        return None
    stored = next(value for key, value in raw.items() if key in (EVENT_FIELD, EVENT_FIELD.encode()))
    deviation = _check_json("event", _raw_bytes(stored), decoded, CODECS["event"].encode(decoded).encode("utf-8"))
    if deviation is None:
        return None
    return replace(deviation, field=EVENT_FIELD)


def _required(structure: str, decoded: Any) -> tuple[str, ...]:
    required = ALWAYS_WRITTEN.get(structure, ())
    if structure == "event" and isinstance(decoded.type, EventType):
        required = (*required, *EVENT_REQUIRED_FIELDS[decoded.type])
    return required


def _missing(structure: str, members: Any, decoded: Any) -> Deviation | None:
    if not isinstance(members, Mapping):
        return None
    absent = [name for name in _required(structure, decoded) if members.get(name) is None]
    if not absent:
        return None
    what = f"{decoded.type.value} event" if structure == "event" and isinstance(decoded.type, EventType) else structure
    listed = ", ".join(absent)
    reason = f"missing {listed}, which every {what} carries (spec {_SECTIONS[structure]})"
    return Deviation("missing_field", f"missing {listed}", reason)


_SECTIONS = {"job": "4.1", "heartbeat": "6.1", "log": "6.3", "pulse": "7", "event": "8.4", "schedule": "5.2"}


def _check_json(structure: str, theirs: bytes, decoded: Any, ours: bytes) -> Deviation | None:
    theirs_tree = _parsed(theirs)
    missing = _missing(structure, theirs_tree, decoded)
    if missing is not None:
        offset = first_difference(ours, theirs)
        return replace(missing, offset=offset, ours=ours, theirs=theirs)
    offset = first_difference(ours, theirs)
    if offset is None:
        return _check_data(decoded, theirs) if structure == "job" else None
    problem, reason = _explain(_parsed(ours), theirs_tree, ours, theirs, offset)
    return Deviation("not_canonical", problem, reason, offset=offset, ours=ours, theirs=theirs)


def _check_schedule(raw: Mapping[Any, Any], decoded: Any) -> Deviation | None:
    stored = {_text(key): _raw_bytes(value) for key, value in raw.items()}
    missing = _missing("schedule", stored, decoded)
    if missing is not None:
        return missing
    ours = {key: value.encode("utf-8", "surrogatepass") for key, value in CODECS["schedule"].encode(decoded).items()}
    for name in (*ours, *(name for name in stored if name not in ours)):
        mine, theirs = ours.get(name, b""), stored.get(name, b"")
        if name == "job" and not decoded.job.is_legacy:
            deviation = _check_json("job", theirs, decoded.job, mine)
        elif mine != theirs:
            deviation = _value_deviation(name, mine, theirs)
        else:
            deviation = None
        if deviation is not None:
            return replace(deviation, field=name)
    return None


def _value_deviation(name: str, ours: bytes, theirs: bytes) -> Deviation:
    offset = first_difference(ours, theirs)
    reason = f"hash field {name!r} holds {_show(theirs)}, canonical {_show(ours)} (spec 2.6, 5.2)"
    return Deviation("not_canonical", "hash value form", reason, offset=offset, ours=ours, theirs=theirs)


def _check_data(job: JobPayload, theirs: bytes) -> Deviation | None:
    """``data`` holds its object in canonical form, name member first, then ``properties`` (spec 4.2)."""
    document = _json.loads(job.data)
    name_key = "class" if job.type is JobType.CLASS else "job"
    leading = [key for key in (name_key, "properties") if key in document]
    ordered = {**{key: document[key] for key in leading}, **document}
    canonical = _json.dumps(ordered)
    if canonical == job.data:
        return None
    ours = encode_job(job.model_copy(update={"data": canonical})).encode("utf-8", "surrogatepass")
    offset = first_difference(ours, theirs)
    reason = (
        "the object in 'data' is not written by the rules of section 2, or its name member does not come "
        "first and 'properties' second (spec 4.2)"
    )
    return Deviation("not_canonical", "data member", reason, field=None, offset=offset, ours=ours, theirs=theirs)


def _parsed(document: bytes) -> Any:
    try:
        return _json.loads(document.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):  # pragma: no cover - the decoder read it already
        return None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _show(value: bytes, limit: int = 40) -> str:
    text = value.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _explain(ours: Any, theirs: Any, ours_bytes: bytes, theirs_bytes: bytes, offset: int) -> tuple[str, str]:
    """Name the first difference between two documents that read the same way up to defaults and nulls."""
    structural = _tree_difference(ours, theirs, "")
    if structural is not None:
        return structural
    return _byte_difference(ours_bytes, theirs_bytes, offset)


def _tree_difference(ours: Any, theirs: Any, path: str) -> tuple[str, str] | None:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        where = f" in {path!r}" if path else ""
        nulls = [key for key in theirs if key not in ours and theirs[key] is None]
        if nulls:
            return "explicit null", f"{nulls[0]!r}{where} is written as null; omit a field that has no value (spec 2.3)"
        absent = [key for key in ours if key not in theirs]
        if absent:
            default = ours[absent[0]]
            reason = f"{absent[0]!r}{where} is absent; canonical writers always write it (default {default!r})"
            return "missing always-written field", reason
        if list(ours) != list(theirs):
            expected = ", ".join(ours)
            return "field order", f"members{where} are not in the order of the field table: {expected} (spec 2.5)"
        for key in ours:
            found = _tree_difference(ours[key], theirs[key], f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for index, (mine, other) in enumerate(zip(ours, theirs)):
            found = _tree_difference(mine, other, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
        return None
    if ours == theirs and type(ours) is type(theirs) or _same_number(ours, theirs):
        return None
    return (
        "value form",
        f"{path or 'the value'} is written {theirs!r}, which reads as {ours!r} (spec {_value_rule(ours)})",
    )


def _same_number(ours: Any, theirs: Any) -> bool:
    def is_number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    return is_number(ours) and is_number(theirs) and ours == theirs


def _value_rule(value: Any) -> str:
    return "2.4" if isinstance(value, str) and value.endswith("Z") else "2"


_WHITESPACE = b" \t\r\n"
_NUMBER_BYTES = b"0123456789+-.eE"


def _number_at(document: bytes, offset: int) -> bytes:
    start = offset
    while start > 0 and document[start - 1] in _NUMBER_BYTES:
        start -= 1
    end = offset
    while end < len(document) and document[end] in _NUMBER_BYTES:
        end += 1
    return document[start:end]


def _escape_at(document: bytes, offset: int) -> bytes:
    """The string escape (``\\/``, ``\\u00e9``) that covers ``offset`` in ``document``, or ``b""``."""
    start = document.rfind(b"\\", max(0, offset - 5), offset + 1)
    if start == -1:
        return b""
    length = 6 if document[start + 1 : start + 2] == b"u" else 2
    return document[start : start + length] if start + length > offset else b""


def _byte_difference(ours: bytes, theirs: bytes, offset: int) -> tuple[str, str]:
    """Two documents that parse to equal values: say which writing rule of section 2 the stored one breaks."""
    here = theirs[offset : offset + 1]
    if here and here in _WHITESPACE:
        return "whitespace", "whitespace between tokens; write compact JSON (spec 2.1)"
    escape, expected = _escape_at(theirs, offset), _escape_at(ours, offset)
    if escape == b"\\/":
        return "escaped /", "'/' is written as '\\/'; write it raw (spec 2.1)"
    if escape.startswith(b"\\u") and not expected:
        shown = escape.decode("ascii", "replace")
        return "\\u escape", f"{shown} escapes a character the canonical form writes raw (spec 2.1)"
    if escape or expected:
        written = (escape or here).decode("utf-8", "replace")
        canonical = (expected or ours[offset : offset + 1]).decode("utf-8", "replace")
        return "string escape", f"written {written} where JSON.stringify writes {canonical} (spec 2.1)"
    number, other = _number_at(ours, offset), _number_at(theirs, offset)
    if number and other:
        return "number form", f"number written {other.decode()}, canonical {number.decode()} (spec 2.2)"
    return "bytes differ", "the bytes differ from the canonical encoding (spec 2)"
