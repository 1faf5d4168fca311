"""From stream entries to rows: decoding, redaction, and what each event does to its job's row.

Nothing here touches Redis or the database; :mod:`zenith_archive._batch` writes what this computes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from zenith_archive.fields import flatten_properties
from zenith_archive.redact import DEFAULT_REDACTED_KEYS, Redactor, redact_keys
from zenith_archive.schema import State
from zenith_protocol import EventType, JobEvent, ProtocolError, _json, decode_event_document
from zenith_protocol.events import EVENT_FIELD, implied_start

__all__ = ["UNDECODABLE", "Decoder", "Entry", "JobRow", "clean", "merge", "small_int", "stream_key"]

logger = logging.getLogger(__name__)

UNDECODABLE = "undecodable"
"""``zenith_job_events.type`` of an entry that did not decode (its raw text is kept in ``data``)."""
SEARCH_TEXT_CHARS = 65_536
"""``search_text`` is cut to this many characters (name and error come first)."""
_INT_MAX = 2**31 - 1
_JOB_TYPES = frozenset(
    {
        EventType.ENQUEUED,
        EventType.STARTED,
        EventType.COMPLETED,
        EventType.FAILED,
        EventType.RETRIED,
        EventType.DEAD_LETTERED,
        EventType.DELETED,
        EventType.PROMOTED,
    }
)
_EVENT_KEYS = frozenset(field.alias or name for name, field in JobEvent.model_fields.items())
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` without building an encoder per call."""
_OPERATOR_JOB_ACTIONS = {EventType.RETRIED: "retry", EventType.DELETED: "delete", EventType.PROMOTED: "promote"}


def stream_key(stream_id: str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as a tuple that sorts in stream order."""
    ms, _, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return (0, 0)


def clean(text: str | None, limit: int | None = None) -> str | None:
    """``text`` as every database accepts it: no NUL, no lone surrogate, at most ``limit`` characters."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii() and _json.has_lone_surrogate(text):  # ASCII (most text) holds no surrogate
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text if limit is None else text[:limit]


def small_int(value: int | None) -> int | None:
    """``value`` clamped to a 32-bit INTEGER column."""
    return None if value is None else min(value, _INT_MAX)


@dataclass
class Job:
    """A redacted job payload: the text to store and what search needs from it."""

    payload: str
    name: str | None
    data_text: str
    fields: list[tuple[str, str]]


@dataclass
class Entry:
    """One stream entry, decoded (``event``) or not (``reason``), with its redacted data."""

    stream_id: str
    order: tuple[int, int]
    event: JobEvent | None
    data: str
    reason: str | None = None
    job: Job | None = None
    queue: str = ""
    job_id: str | None = None

    type: str = field(init=False, repr=False)
    """The event type as stored."""
    stored_queue: str = field(init=False, repr=False)
    """The queue as stored (cleaned, cut to the column)."""
    key: tuple[str, str] | None = field(init=False, repr=False)
    """``(queue, job id)`` as stored, or None for an entry about no job."""
    touches_job: bool = field(init=False, repr=False)
    """Whether this event changes its job's row (a known per-job type, or a recovered stuck-group job)."""

    def __post_init__(self) -> None:
        # Computed once: the batch writer reads each of them several times per entry.
        event = self.event
        if event is None:
            self.type = UNDECODABLE
        else:
            self.type = event.type.value if isinstance(event.type, EventType) else str(event.type)
        self.stored_queue = clean(self.queue, 255) or ""
        self.key = None if self.job_id is None else (self.stored_queue, clean(self.job_id, 255) or "")
        self.touches_job = (
            event is not None
            and event.job_id is not None
            and (event.type in _JOB_TYPES or event.type == EventType.RECOVERED)
        )

    def operator_action(self) -> tuple[str, int | None] | None:
        """``(action, count)`` when the event belongs in the audit trail, else None."""
        event = self.event
        if event is None:
            return None
        if event.type == EventType.OPERATOR:
            action = event.action.value if isinstance(event.action, Enum) else str(event.action or "")
            return action, event.count
        per_job = _OPERATOR_JOB_ACTIONS.get(event.type) if isinstance(event.type, EventType) else None
        if per_job is not None and event.actor:
            return per_job, 1
        return None


def _text_of(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw if isinstance(raw, str) else repr(raw)


class Decoder:
    """Decodes stream entries and redacts what they carry (default keys, then the user's hook)."""

    def __init__(self, *, redact: Redactor | None = None, keys: Collection[str] = DEFAULT_REDACTED_KEYS) -> None:
        self.hook = redact
        self.keys = frozenset(key.lower() for key in keys)

    def entry(self, stream_id: str, fields: Mapping[Any, Any] | None) -> Entry:
        """The entry for one stream entry; never raises."""
        order = stream_key(stream_id)
        if not fields:  # a pending entry the stream trimmed before it was archived (no entry has no field)
            return Entry(stream_id, order, None, "", reason="trimmed from the stream before it was archived")
        try:
            event, document = decode_event_document(fields)
        except ProtocolError as exc:
            return self._undecodable(stream_id, order, fields, exc.reason)
        job = self._job(event.payload) if event.payload is not None else None
        raw = {k: v for k, v in document.items() if k != "payload"}
        if not raw.keys() <= _EVENT_KEYS:  # only fields the protocol does not define can hold secrets
            raw = redact_keys(raw, self.keys)
        if event.payload is not None:
            raw["payload"] = job.payload if job is not None else None
        return Entry(
            stream_id=stream_id,
            order=order,
            event=event,
            data=_compact(raw),
            job=job,
            queue=event.queue,
            job_id=event.job_id,
        )

    def _undecodable(self, stream_id: str, order: tuple[int, int], fields: Any, reason: str) -> Entry:
        text = _text_of(_field(fields, EVENT_FIELD)) if isinstance(fields, Mapping) else _text_of(fields)
        queue, job_id = "", None
        try:
            parsed = _json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):  # JSON, just not a valid event: its secrets are still redacted
            text = _compact(redact_keys(parsed, self.keys))
            queue = parsed["queue"] if isinstance(parsed.get("queue"), str) else ""
            job_id = parsed["jobId"] if isinstance(parsed.get("jobId"), str) else None
        return Entry(stream_id, order, None, text, reason=reason, queue=queue, job_id=job_id)

    def _may_hold_keys(self, text: str) -> bool:
        """Whether a redacted key could be in ``text``: one of them appears in it, or an escape could hide one."""
        if "\\u" in text:
            return True
        lowered = text.lower()
        return any(key in lowered for key in self.keys)

    def _job(self, payload: str) -> Job | None:
        """The redacted job, or None when the payload is not a JSON object (it is then not stored)."""
        try:
            job = _json.loads(payload)
        except (ValueError, RecursionError):
            return None
        if not isinstance(job, dict):
            return None
        data = job.get("data")
        if isinstance(data, str):
            try:
                job["data"] = _json.loads(data)
            except (ValueError, RecursionError):
                pass
        if self._may_hold_keys(payload):
            job = redact_keys(job, self.keys)
        if self.hook is not None:
            try:
                job = self.hook(job)
            except Exception:  # a faulty hook must not stop the archive; the payload is then left out
                logger.exception("the redaction hook failed; the job's payload is not archived")
                return None
        try:
            return _finish_job(job)
        except (TypeError, ValueError):
            logger.warning("the redaction hook returned a job that is not JSON; its payload is not archived")
            return None


def _field(fields: Any, name: str) -> Any:
    if not isinstance(fields, Mapping):
        return fields
    for key, value in fields.items():
        if key in (name, name.encode()):
            return value
    return json.dumps({_text_of(k): _text_of(v) for k, v in fields.items()}, ensure_ascii=False)


def _finish_job(job: Any) -> Job:
    if not isinstance(job, dict):
        raise TypeError("the job is not an object")
    data = job.get("data")
    data_text = _compact(data) if not isinstance(data, str) else data
    name: str | None = None
    fields: list[tuple[str, str]] = []
    if isinstance(data, dict):
        candidate = data.get("job", data.get("class"))
        name = candidate if isinstance(candidate, str) else None
        fields = flatten_properties(data.get("properties"))
    stored = {**job, "data": data_text} if not isinstance(data, str) else job
    return Job(_compact(stored), name, data_text, fields)


def search_text(name: str | None, error: str | None, data_text: str | None) -> str:
    """What full-text search indexes for a job: its name, last error and data, one per line."""
    return "\n".join(part for part in (name, error, data_text) if part)[:SEARCH_TEXT_CHARS]


def data_text_of(payload: str | None) -> str | None:
    """The ``data`` text of a stored payload."""
    if payload is None:
        return None
    try:
        job = json.loads(payload)
    except ValueError:
        return None
    data = job.get("data") if isinstance(job, dict) else None
    return data if isinstance(data, str) else None


@dataclass
class JobRow:
    """A ``zenith_jobs`` row being brought up to date (the columns the archiver writes)."""

    id: int
    state: str
    attempts: int
    name: str | None = None
    enqueued_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    updated_at: int | None = None
    duration_ms: float | None = None
    worker_id: str | None = None
    error: str | None = None
    payload: str | None = None
    search_text: str | None = None
    last_stream_id: str | None = None
    data_text: str | None = field(default=None, repr=False)
    """The payload's ``data`` text, when this batch set the payload (saves parsing it again)."""
    new_fields: list[tuple[str, str]] | None = field(default=None, repr=False)
    """Set when the payload changed: the job's fields to store instead of the old ones."""
    finals: list[tuple[Entry, str]] = field(default_factory=list, repr=False)
    """Events that brought the job into a final state, with that state (for the legacy table)."""


_STATE_AFTER: dict[str, str] = {
    EventType.STARTED.value: State.ACTIVE,
    EventType.COMPLETED.value: State.COMPLETED,
    EventType.FAILED.value: State.FAILED,
    EventType.RETRIED.value: State.WAITING,  # an operator's retry; an automatic one waits its delay
    EventType.DEAD_LETTERED.value: State.DEAD,
    EventType.DELETED.value: State.DELETED,
    EventType.PROMOTED.value: State.WAITING,
    EventType.RECOVERED.value: State.WAITING,
}


def _state_after(entry: Entry, event: JobEvent, current: str) -> str:
    kind = event.type
    if kind == EventType.ENQUEUED or (kind == EventType.RETRIED and not event.actor):
        return State.DELAYED if event.delay_ms else State.WAITING
    return _STATE_AFTER.get(entry.type, current)


def _fill(row: JobRow, entry: Entry, *, newer: bool) -> None:
    """What any event tells about the job, whatever its order."""
    event = entry.event
    if event is None:  # only decoded per-job events reach here
        return
    job = entry.job
    name = (job.name if job is not None else None) or event.job_name
    if name and (newer or row.name is None):
        row.name = clean(name, 255)
    if row.enqueued_at is None and event.enqueued_at_ms is not None:
        row.enqueued_at = event.enqueued_at_ms
    if event.attempt is not None:
        row.attempts = max(row.attempts, small_int(event.attempt) or 0)
    if job is not None and (newer or row.payload is None):
        row.payload = clean(job.payload)
        row.data_text = job.data_text
        row.new_fields = [(clean(k) or "", clean(v) or "") for k, v in job.fields]


def _apply(row: JobRow, entry: Entry) -> None:
    """What a newer event (in stream order) does to the job's current state."""
    event = entry.event
    if event is None:
        return
    before = row.state
    row.state = _state_after(entry, event, row.state)
    at = event.timestamp
    kind = event.type
    if kind == EventType.ENQUEUED and row.enqueued_at is None:
        row.enqueued_at = at
    if kind == EventType.STARTED:
        row.started_at, row.finished_at, row.duration_ms = at, None, None
    elif implied_start(event) is not None:  # an attempt's end that stands for its start too (PROTOCOL 8.4)
        row.started_at = event.started_at_ms
    if kind in (EventType.STARTED, EventType.COMPLETED, EventType.FAILED, EventType.DEAD_LETTERED):
        row.worker_id = clean(event.worker_id, 255) or row.worker_id
    if event.error is not None and kind in (EventType.FAILED, EventType.DEAD_LETTERED):
        row.error = clean(event.error)
    if kind == EventType.COMPLETED:
        started = row.started_at
        row.duration_ms = event.duration_ms if event.duration_ms is not None else (at - started if started else None)
    elif kind == EventType.FAILED and event.duration_ms is not None:
        row.duration_ms = event.duration_ms
    if row.state in (State.COMPLETED, State.DEAD, State.DELETED):
        row.finished_at = at
        if row.state != before:
            row.finals.append((entry, row.state))
    elif row.state in (State.WAITING, State.DELAYED):
        row.finished_at = None
    row.updated_at = at
    row.last_stream_id = entry.stream_id


def merge(row: JobRow, entries: list[Entry], *, skip_fill: bool = False) -> None:
    """Bring ``row`` up to date with ``entries`` (new to the archive, in stream order).

    Events newer than the row's last one set its state; older ones (delivered late, e.g. to
    another archiver) only fill what the row lacks. ``skip_fill`` leaves the payload alone (a job
    whose final state is not archived).
    """
    last = stream_key(row.last_stream_id) if row.last_stream_id else None
    text_before = (row.name, row.error, row.payload)
    for entry in entries:
        newer = last is None or entry.order > last
        if not skip_fill:
            _fill(row, entry, newer=newer)
        if newer:
            _apply(row, entry)
            last = entry.order
    if (row.name, row.error, row.payload) != text_before or row.search_text is None:
        data = row.data_text if row.data_text is not None else data_text_of(row.payload)
        row.search_text = clean(search_text(row.name, row.error, data))
