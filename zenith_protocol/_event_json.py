"""Lifecycle events and their live log lines as canonical JSON, on a short path.

The generic encoder has pydantic serialize a model, then looks through the whole text for the
number forms JavaScript writes otherwise and for nulls among unknown fields. The only numbers of
an event that can need rewriting are its float fields, so :func:`event_json` looks at those
instead; :func:`log_json` writes a log line of known fields without building a ``LogEntry``, and
:func:`attempt_texts` a worker's ``started`` or ``completed`` event and its log line without building them.
Workers write an event and a log line or two per job (PROTOCOL 8 and 6.3), which made the generic
path much of what events cost them. What these writers cannot take in the canonical way (unknown
fields, text with a lone surrogate, a float JavaScript writes with an exponent, a timestamp from
year 10000) they return ``None`` for, and the caller uses the generic path.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from json.encoder import encode_basestring

from pydantic_core import PydanticSerializationError

from zenith_protocol._json import MAX_SAFE_INTEGER, has_lone_surrogate
from zenith_protocol._types import JsFloat
from zenith_protocol.events import JobEvent
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = ["attempt_texts", "event_json", "log_json"]

_FLOAT_FIELDS = tuple(name for name, info in JobEvent.model_fields.items() if info.annotation == JsFloat | None)
"""The event's float fields, the only members whose number form may need JavaScript's (the rest are integers)."""

_PLAIN_FLOATS_FROM, _PLAIN_FLOATS_UNTIL = 1e-5, 1e15
"""Floats in this range pydantic-core writes as JavaScript does (whole ones are written as integers by
:data:`~zenith_protocol._types.JsFloat`); outside it, it may pick another form (``1e-7``, ``1e+16``)."""

_serialize = JobEvent.__pydantic_serializer__.to_json

_LOG_TAIL = f'","protocolVersion":{PROTOCOL_VERSION}}}'
"""What ends every log line :func:`log_json` writes: the end of its timestamp and the protocol version."""

_WORKER, _QUEUE, _JOB = ',"workerId":', ',"queue":', ',"jobId":'
_NAME, _ATTEMPT, _DURATION = ',"jobName":', ',"attempt":', ',"durationMs":'
_ENQUEUED, _STARTED_AT = ',"enqueuedAt":', ',"startedAt":'
_EVENT_TAIL = f',"protocolVersion":{PROTOCOL_VERSION}}}'

_quoted_name = lru_cache(maxsize=1024)(encode_basestring)
"""A queue, job name, worker id or level as a JSON string: a worker writes the same few again and again."""

_EPOCH = datetime(1970, 1, 1)
_ISO_UNTIL_MS = 253_402_300_800_000
"""10000-01-01T00:00:00Z: from there on an ISO timestamp is not what ``datetime`` writes."""


def event_json(event: JobEvent) -> str | None:
    """Canonical JSON of ``event``, the bytes the generic encoder writes; ``None`` when it needs the generic one.

    The generic encoder checks the whole text for number forms to rewrite; here only the float
    fields can hold one, so they are looked at instead.
    """
    if event.__pydantic_extra__:
        return None  # unknown fields may hold null, which exclude_none would drop, and floats of any form
    values = event.__dict__
    for name in _FLOAT_FIELDS:
        value = values[name]
        if value is not None and value != 0 and not _PLAIN_FLOATS_FROM <= abs(value) < _PLAIN_FLOATS_UNTIL:
            return None
    try:
        return _serialize(event, by_alias=True, exclude_none=True).decode()
    except (PydanticSerializationError, ValueError):
        return None  # a lone surrogate, which pydantic-core cannot write; the generic path escapes it


def _duration_text(value: float) -> str | None:
    """``value`` (ms, ≥ 0) as JavaScript writes it, or ``None`` when Python's ``repr`` may not write it so."""
    if value.is_integer():
        return str(int(value)) if value < _PLAIN_FLOATS_UNTIL else None
    return repr(value) if 1e-4 <= value < _PLAIN_FLOATS_UNTIL else None  # repr writes 1e-05 below 1e-4


def attempt_texts(
    kind: str,
    queue: str,
    timestamp_ms: int,
    job_id: str,
    job_name: str | None,
    worker_id: str,
    attempt: int,
    enqueued_at_ms: int | None,
    duration_ms: float | None = None,
    started_at_ms: int | None = None,
    level: str | None = None,
) -> tuple[str, str] | None:
    """Canonical JSON of a worker's ``started`` or ``completed`` event (``kind``) with these fields, the bytes
    :func:`event_json` writes, and with ``level`` its log line as :func:`log_json` writes it (message
    ``Job <name or ?> (<id>) <kind>[ in <whole ms> ms]``; ``""`` without ``level``): a worker writes one
    or two per job, so they are written in one go, without building either.

    ``None`` (use the generic path) for what it does not write in the canonical way: a lone
    surrogate, a duration JavaScript writes with an exponent, a number out of range; for the
    line, also a job without id and a timestamp from year 10000 on.
    """
    if not (0 <= timestamp_ms <= MAX_SAFE_INTEGER and 0 <= attempt <= MAX_SAFE_INTEGER):
        return None
    for at in (enqueued_at_ms, started_at_ms):
        if at is not None and not 0 <= at <= MAX_SAFE_INTEGER:
            return None
    duration = None if duration_ms is None or not duration_ms >= 0 else _duration_text(duration_ms)
    if duration is None and duration_ms is not None:
        return None
    name = _quoted_name
    quoted_queue, quoted_id, quoted_worker = name(queue), encode_basestring(job_id), name(worker_id)
    event = (
        f'{{"type":"{kind}","queue":{quoted_queue},"timestamp":{timestamp_ms},"jobId":{quoted_id}'
        f"{'' if job_name is None else _NAME + name(job_name)}"
        f"{_WORKER}{quoted_worker}{_ATTEMPT}{attempt}"
        f"{'' if duration is None else _DURATION + duration}"
        f"{'' if enqueued_at_ms is None else _ENQUEUED + str(enqueued_at_ms)}"
        f"{'' if started_at_ms is None else _STARTED_AT + str(started_at_ms)}{_EVENT_TAIL}"
    )
    line = ""
    if level is not None:
        if not job_id or timestamp_ms >= _ISO_UNTIL_MS:
            return None
        message = f"Job {job_name or '?'} ({job_id}) {kind}"
        if duration_ms is not None:
            message += f" in {duration_ms:.0f} ms"
        second, millisecond = divmod(timestamp_ms, 1000)
        line = (
            f'{{"level":{name(level)},"message":{encode_basestring(message)}{_WORKER}{quoted_worker}'
            f'{_QUEUE}{quoted_queue}{_JOB}{quoted_id},"timestamp":"{_iso_second(second)}.{millisecond:03d}Z{_LOG_TAIL}'
        )
    # encode_basestring leaves surrogates as they are: one in the text came from some field.
    if not (event.isascii() and line.isascii()) and (has_lone_surrogate(event) or has_lone_surrogate(line)):
        return None
    return event, line


@lru_cache(maxsize=16)
def _iso_second(second: int) -> str:
    # Cached: the events of one batch mostly fall in the same second. Date arithmetic rather than
    # gmtime, which some platforms refuse far ahead.
    return (_EPOCH + timedelta(seconds=second)).isoformat()


def log_json(
    level: str, message: str, worker_id: str | None, queue: str | None, job_id: str | None, timestamp_ms: int
) -> str | None:
    """Canonical JSON of a live log line with these fields (protocol version 2, no unknown fields), or ``None``."""
    if not 0 <= timestamp_ms < _ISO_UNTIL_MS:
        return None
    second, millisecond = divmod(timestamp_ms, 1000)
    quote, name = encode_basestring, _quoted_name
    line = (
        f'{{"level":{name(level)},"message":{quote(message)}'
        f"{'' if worker_id is None else _WORKER + name(worker_id)}"
        f"{'' if queue is None else _QUEUE + name(queue)}"
        f"{'' if job_id is None else _JOB + quote(job_id)}"
        f',"timestamp":"{_iso_second(second)}.{millisecond:03d}Z{_LOG_TAIL}'
    )
    # encode_basestring leaves surrogates as they are: one in the line came from some field.
    if not line.isascii() and has_lone_surrogate(line):
        return None  # a lone surrogate is escaped as JavaScript does, which the generic path knows
    return line
