"""Job lifecycle events, usable by any Python job system (Celery, RQ, home-grown workers).

Each event writes, in one round trip: the live log line (PUBLISH on the logs channel and
the capped history list), the per-minute throughput counter for finished jobs, the queue's
counters hash (finished, failed and dead-lettered jobs, the duration histogram: PROTOCOL 6.6)
and an entry in the capped events stream that the SQL archive consumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, NamedTuple, TypedDict

import redis
from redis.client import Pipeline

from zenith_protocol import (
    EventType,
    JobEvent,
    JobPayload,
    KeySpace,
    LogEntry,
    LogLevel,
    OperatorAction,
    ProtocolError,
    decode_event,
    encode_event,
    encode_job,
)
from zenith_protocol._event_json import attempt_texts
from zenith_protocol.canonical import COUNTER_TTL_S
from zenith_protocol.codec import encode_log_line
from zenith_protocol.counters import COMPLETED_FIELD, DURATION_SUM_FIELD, CounterIncrements, counter_field
from zenith_protocol.events import EVENTS_STREAM_MAXLEN, exact_job_event
from zenith_protocol.workers import LOG_HISTORY_CAP
from zenith_sdk._wire import storable, text_of
from zenith_sdk.connection import ClientHolder
from zenith_sdk.scripts import EVENTS, ScriptArg, ScriptPipeline, scripts_for

if TYPE_CHECKING:
    from typing import Unpack

logger = logging.getLogger(__name__)

__all__ = ["AttemptEvents", "EncodedEvent", "EventEmitter", "EventFields", "EventWriter", "job_event", "log_entry_for"]

_FINISHED_KINDS = frozenset({EventType.COMPLETED.value, EventType.FAILED.value})
_LEVELS = {
    EventType.COMPLETED: LogLevel.SUCCESS,
    EventType.FAILED: LogLevel.ERROR,
    EventType.DEAD_LETTERED: LogLevel.ERROR,
    EventType.RETRIED: LogLevel.WARN,
    EventType.RECOVERED: LogLevel.WARN,
    EventType.DELETED: LogLevel.WARN,
}

# By the type's value: looking an enum member up hashes it in Python code (Enum.__hash__).
_LEVEL_OF = {kind.value: _LEVELS.get(kind, LogLevel.INFO) for kind in EventType}
_WORDS = {kind.value: kind.value.replace("_", "-") for kind in EventType}
_LEVEL_TEXT = {kind: level.value for kind, level in _LEVEL_OF.items()}
_RETRIED = EventType.RETRIED.value
_STARTED, _COMPLETED = EventType.STARTED.value, EventType.COMPLETED.value

_HISTORY_LAST = str(LOG_HISTORY_CAP - 1)
_COUNTER_TTL = str(COUNTER_TTL_S)


def _json_strings(texts: list[str]) -> bytes:
    """``texts`` as a JSON array of strings, the head of the events script (ASCII: other text is escaped)."""
    return f"[{','.join(map(encode_basestring_ascii, texts))}]".encode()


def _ended(texts: Sequence[bytes]) -> bytes:
    """``texts`` each followed by a newline, as one argument of the events script."""
    return b"\n".join(texts) + b"\n" if texts else b""


_WATCH_ATTEMPTS = 10
"""Tries of :meth:`EventEmitter.write_staged` while the staged list keeps changing under it."""


def _staged_event(text: str, worker_id: str) -> JobEvent | None:
    try:
        return decode_event(text)
    except ProtocolError as exc:
        logger.warning("worker=%s staged an event that does not decode (%s); it is left out", worker_id, exc.reason)
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Common(TypedDict, total=False):
    job_id: str | None
    worker_id: str | None
    attempt: int | None
    actor: str | None
    action: OperatorAction | str | None
    count: int | None
    enqueued_at_ms: int | None
    payload: str | None


class EventFields(_Common, total=False):
    """The :class:`~zenith_protocol.JobEvent` fields :func:`job_event` takes as keywords."""

    duration_ms: float | None
    started_at_ms: int | None
    delay_ms: int | None
    error: str | None
    stack: str | None
    rule_id: str | None
    subject: str | None
    from_state: str | None
    to_state: str | None
    seq: int | None
    value: float | None
    threshold: float | None
    kind: str | None
    severity: str | None
    silenced_by: str | None


class _About(_Common, total=False):
    # What the EventEmitter conveniences take besides the field each one names.
    job_name: str | None
    timestamp_ms: int | None


class _AnyFields(_About, total=False):
    duration_ms: float | None
    delay_ms: int | None
    error: str | None


class _BesidesDuration(_About, total=False):
    delay_ms: int | None
    error: str | None


class _BesidesError(_About, total=False):
    duration_ms: float | None
    delay_ms: int | None
    stack: str | None


class _BesidesDelay(_About, total=False):
    duration_ms: float | None
    error: str | None


def job_event(
    event_type: EventType,
    queue: str,
    job: JobPayload | str | None = None,
    *,
    job_name: str | None = None,
    include_payload: bool = False,
    timestamp_ms: int | None = None,
    **fields: Unpack[EventFields],
) -> JobEvent:
    """Build an event about ``job`` (a payload, or just its id) in ``queue``.

    The other keywords are :class:`~zenith_protocol.JobEvent` fields (:class:`EventFields`:
    ``worker_id``, ``attempt``, ``duration_ms``, ``delay_ms``, ``error``, ``actor``, ...).
    """
    if isinstance(job, JobPayload):
        fields.setdefault("job_id", job.id)
        fields.setdefault("enqueued_at_ms", job.created_at_ms)
        job_name = job_name or job.name
        if include_payload:
            fields.setdefault("payload", encode_job(job))
    elif job is not None:
        fields.setdefault("job_id", job)
    values = {
        "type": event_type,
        "queue": queue,
        "timestamp": timestamp_ms if timestamp_ms is not None else _now_ms(),
        "job_name": job_name,
        **fields,
    }
    # A writer's own events hold values of the right types already: validating them again is most of what
    # building one costs, and control operations build one per job they move.
    return exact_job_event(values) or JobEvent(**values)


def _kind(event: JobEvent) -> tuple[str, LogLevel, bool]:
    """The event's type as text, the level of its log line, and whether it ends an attempt (6.4).

    Read without hashing the enum member or reading its ``value`` property (both Python code in
    Enum): this runs for every event a worker writes.
    """
    kind = event.type
    if type(kind) is EventType:
        value: str = kind._value_
        return value, _LEVEL_OF[value], value in _FINISHED_KINDS
    return str(kind), LogLevel.INFO, False


def _describe(event: JobEvent, kind: str) -> str:
    """The message of the log line of ``event``, whose type reads ``kind``."""
    text = _job_words(kind, event.queue, event.job_id, event.job_name, event.duration_ms)
    if event.delay_ms is not None:
        when = "next attempt" if kind == _RETRIED else "runs"
        text += f", {when} in {event.delay_ms / 1000:g} s"
    if event.action is not None:
        action = event.action.value if hasattr(event.action, "value") else event.action
        text += f": {action}" + (f" x{event.count}" if event.count is not None else "")
    if event.actor:
        text += f" by {event.actor}"
    if event.error:
        text += f": {event.error}"
    return text


def _job_words(kind: str, queue: str, job_id: str | None, job_name: str | None, duration_ms: float | None) -> str:
    """How a log line's message starts: what happened to which job (or queue), and in how long."""
    word = _WORDS.get(kind) or kind.replace("_", "-")
    text = f"Job {job_name or '?'} ({job_id}) {word}" if job_id else f"Queue {queue} {word}"
    if duration_ms is not None:
        text += f" in {duration_ms:.0f} ms"
    return text


def log_entry_for(event: JobEvent) -> LogEntry:
    """The live log line the console shows for ``event``."""
    kind, level, _ = _kind(event)
    return LogEntry(
        level=level,
        message=_describe(event, kind),
        worker_id=event.worker_id or event.actor or "zenith",
        queue=event.queue,
        job_id=event.job_id,
        timestamp=event.timestamp,  # epoch ms, read exactly
    )


def _log_line(event: JobEvent, kind: str, level: LogLevel) -> str:
    """``encode_log(log_entry_for(event))``, written without building the entry (``kind``, ``level``: :func:`_kind`)."""
    return encode_log_line(
        level,
        _describe(event, kind),
        timestamp_ms=event.timestamp,
        worker_id=event.worker_id or event.actor or "zenith",
        queue=event.queue,
        job_id=event.job_id,
    )


@dataclass(slots=True)
class EncodedEvent:
    """An event ready for the events script: its JSON, its log line (``b""``: none), and what it counts."""

    event: bytes
    line: bytes
    queue: str
    minute: int | None
    """The epoch minute of the throughput counter it adds 1 to (6.4), ``None`` unless it ends an attempt."""
    counter: str | None
    """The field of its queue's counters hash it adds 1 to (6.6), if any."""
    duration_ms: float | None = None
    job_name: str | None = None


def encoded(event: JobEvent, *, live_log: bool = True) -> EncodedEvent:
    """``event`` ready for the events script, with its log line when ``live_log``."""
    kind, level, ends = _kind(event)
    line = _log_line(event, kind, level).encode() if live_log else b""
    minute = event.timestamp // 60_000 if ends else None
    # As bytes (UTF-8, as the protocol's text is): redis-py passes them on untouched.
    text = encode_event(event).encode()
    return EncodedEvent(text, line, event.queue, minute, counter_field(event.type), event.duration_ms, event.job_name)


class AttemptEvents:
    """A worker's ``started`` and ``completed`` events with their log lines, encoded on a short path (one or
    two per job).

    They come out as the generic path writes them (:func:`encoded`), which they fall
    back on for what the short path does not write (:func:`~zenith_protocol._event_json.attempt_texts`).
    """

    def __init__(self, worker_id: str, *, live_log: bool = True) -> None:
        self.worker_id = worker_id
        self.live_log = live_log

    def started(self, queue: str, job: JobPayload, attempt: int, at_ms: int) -> EncodedEvent:
        """The ``started`` event of ``attempt`` of ``job``, which started at ``at_ms``."""
        return self._encoded(_STARTED, queue, job, attempt, at_ms, None, None)

    def completed(
        self, queue: str, job: JobPayload, attempt: int, duration_ms: float, *, started_ms: int | None = None
    ) -> EncodedEvent:
        """The ``completed`` event of ``attempt`` of ``job``, which ran for ``duration_ms``, now.

        ``started_ms``: the attempt's start, when this event stands for its ``started`` event too (8.4).
        """
        return self._encoded(_COMPLETED, queue, job, attempt, _now_ms(), duration_ms, started_ms)

    def completed_later(
        self, queue: str, job: JobPayload, attempt: int, duration_ms: float, *, started_ms: int | None = None
    ) -> LaterCompleted:
        """:meth:`completed`, timed now but encoded later (:meth:`LaterCompleted.encoded`): a worker encodes
        the events of one round trip together, which is cheaper than one by one between other work."""
        return LaterCompleted(self, queue, job, attempt, _now_ms(), duration_ms, started_ms)

    def _encoded(
        self,
        kind: str,
        queue: str,
        job: JobPayload,
        attempt: int,
        now_ms: int,
        duration_ms: float | None,
        started_ms: int | None,
    ) -> EncodedEvent:
        job_id, name, worker, enqueued = job.id, job.name, self.worker_id, job.created_at_ms
        level = _LEVEL_TEXT[kind] if self.live_log else None
        values = (queue, now_ms, job_id, name, worker, attempt, enqueued, duration_ms, started_ms, level)
        # Without a worker id, the line names "zenith" (log_entry_for): the generic path's to write.
        texts = attempt_texts(kind, *values) if worker else None
        if texts is None:
            event = job_event(
                EventType(kind),
                queue,
                job,
                worker_id=worker,
                attempt=attempt,
                duration_ms=duration_ms,
                started_at_ms=started_ms,
                timestamp_ms=now_ms,
            )
            return encoded(event, live_log=self.live_log)
        text, line = texts
        if kind == _STARTED:
            return EncodedEvent(text.encode(), line.encode(), queue, None, None)
        return EncodedEvent(text.encode(), line.encode(), queue, now_ms // 60_000, COMPLETED_FIELD, duration_ms, name)


class LaterCompleted(NamedTuple):
    """A ``completed`` event of :class:`AttemptEvents`, timed but not encoded yet."""

    events: AttemptEvents
    queue: str
    job: JobPayload
    attempt: int
    at_ms: int
    duration_ms: float
    started_ms: int | None

    def encoded(self) -> EncodedEvent:
        """The event, encoded as :meth:`AttemptEvents.completed` encodes it."""
        return self.events._encoded(
            _COMPLETED, self.queue, self.job, self.attempt, self.at_ms, self.duration_ms, self.started_ms
        )


class EventEmitter(ClientHolder):
    """Writes lifecycle events; thread-safe (redis-py clients are).

    Args:
        client: a redis-py client or a URL.
        keyspace: key names (default: the wire layout).
        stream_maxlen: approximate cap of the events stream.
        live_log: also publish each event as a live log line and keep it in the history list.
    """

    def __init__(
        self,
        client: redis.Redis | str | None = None,
        *,
        keyspace: KeySpace | None = None,
        stream_maxlen: int = EVENTS_STREAM_MAXLEN,
        live_log: bool = True,
    ) -> None:
        if stream_maxlen < 1:
            raise ValueError(f"stream_maxlen must be at least 1, got {stream_maxlen}")
        self._hold(client)
        self.keyspace = keyspace or KeySpace()
        self.stream_maxlen = stream_maxlen
        self.live_log = live_log
        self.scripts = scripts_for(self.client)

    def _call(self, events: Sequence[JobEvent | EncodedEvent]) -> tuple[list[str], list[ScriptArg]]:
        """KEYS and ARGV of the events script for ``events``."""
        finished: dict[int, int] = {}
        counters: dict[str, CounterIncrements] = {}
        texts: list[bytes] = []
        lines: list[bytes] = []
        for event in events:
            record = event if type(event) is EncodedEvent else encoded(event, live_log=self.live_log)  # type: ignore[arg-type]
            minute = record.minute
            if minute is not None:
                finished[minute] = finished.get(minute, 0) + 1
            if record.counter is not None:
                queue = record.queue
                increments = counters.get(queue) or counters.setdefault(queue, CounterIncrements())
                increments.count(record.counter, record.duration_ms, record.job_name)
            texts.append(record.event)
            if record.line:
                lines.append(record.line)
        return self._script_call(texts, lines, finished, counters)

    def _script_call(
        self,
        texts: Sequence[bytes],
        lines: Sequence[bytes],
        finished: dict[int, int],
        counters: dict[str, CounterIncrements],
    ) -> tuple[list[str], list[ScriptArg]]:
        """KEYS and ARGV of the events script: the events' JSON ``texts``, the log ``lines``, finished jobs
        per minute, and what to add to each queue's counters hash."""
        space = self.keyspace
        keys = [
            space.events(),
            space.logs_history(),
            *(space.throughput(minute) for minute in finished),
            *(space.queue_counters(queue) for queue in counters),
        ]
        head = [
            str(self.stream_maxlen),
            space.logs_channel(),
            _HISTORY_LAST,
            _COUNTER_TTL,
            str(len(texts)),
            str(len(counters)),
            *map(str, finished.values()),
        ]
        for increments in counters.values():
            head.append(str(len(increments.counts)))
            for field, amount in increments.counts.items():
                head += (field if field.isascii() else storable(field), str(amount))
            if increments.duration_sum_ms:
                head += ("1", DURATION_SUM_FIELD, repr(increments.duration_sum_ms))
            else:
                head.append("0")
        # Each text ended by a newline, which no JSON text holds raw (PROTOCOL 8.1).
        return keys, [_json_strings(head), _ended(texts), _ended(lines)]

    def prepare(self, events: Sequence[JobEvent | EncodedEvent | LaterCompleted]) -> list[EncodedEvent]:
        """``events`` ready for :meth:`write` and :meth:`stage`, each encoded once."""
        prepared: list[EncodedEvent] = []
        for event in events:
            if isinstance(event, EncodedEvent):
                prepared.append(event)
            elif isinstance(event, LaterCompleted):
                prepared.append(event.encoded())
            else:
                prepared.append(encoded(event, live_log=self.live_log))
        return prepared

    def stage(self, pipe: ScriptPipeline, worker_id: str, events: Sequence[EncodedEvent]) -> None:
        """Queue on ``pipe`` the push of ``events`` onto the staged events list of ``worker_id`` (PROTOCOL 8.1):
        one element, their JSON texts each ended by a newline. :meth:`write` appends them later."""
        if events:
            pipe.commands.rpush(self.keyspace.staged_events(worker_id), _ended([event.event for event in events]))

    def write(self, pipe: ScriptPipeline | Pipeline, events: Sequence[JobEvent | EncodedEvent]) -> bool:
        """Queue the one script call that records ``events`` on ``pipe`` (nothing is sent).

        Returns whether anything was queued. On a :class:`~zenith_sdk.scripts.ScriptPipeline` a call
        that meets a flushed script cache is repeated; on a plain redis-py pipeline it is a bare
        EVALSHA whose NOSCRIPT error is the caller's to handle.
        """
        if not events:
            return False
        keys, args = self._call(events)
        if isinstance(pipe, ScriptPipeline):
            pipe.call(EVENTS, keys, args)
        else:
            pipe.execute_command(*EVENTS.command(keys, args))  # type: ignore[no-untyped-call]
        return True

    def emit(self, *events: JobEvent) -> None:
        """Record ``events`` in one round trip."""
        if events:
            self.scripts.call(EVENTS, *self._call(events))

    def write_staged(self, worker_id: str) -> int:
        """Append the events staged by ``worker_id`` (:meth:`stage`) to the stream, with their log lines and
        counts, and empty its list; returns how many. For a worker that ended before it wrote them.

        Atomic: the list is watched, so two callers never write its events twice. An entry that does
        not decode as an event is left out (and logged).
        """
        key = self.keyspace.staged_events(worker_id)
        self.scripts.load(EVENTS)
        with self.client.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_ATTEMPTS):
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    blobs: list[bytes | str] = pipe.lrange(key, 0, -1)
                    if not blobs:
                        return 0
                    texts = [text for blob in blobs for text in text_of(blob).split("\n") if text]
                    staged = [_staged_event(text, worker_id) for text in texts]
                    events = [event for event in staged if event is not None]
                    pipe.multi()
                    self.write(pipe, events)
                    pipe.delete(key)
                    pipe.execute()
                    return len(events)
                except redis.WatchError:
                    continue
        # Written to all the while: its worker is alive after all, and writes them itself.
        logger.warning("worker=%s keeps staging events; they are left to it", worker_id)
        return 0

    def emit_encoded(self, events: Sequence[str | bytes]) -> None:
        """Append events already encoded (canonical event JSON) to the stream, without live log lines."""
        texts = [event.encode() if isinstance(event, str) else event for event in events]
        if any(b"\n" in text for text in texts):
            raise ValueError("an encoded event holds a raw newline; pass compact JSON (encode_event writes it)")
        if texts:
            self.scripts.call(EVENTS, *self._script_call(texts, [], {}, {}))

    @classmethod
    def resolve(cls, events: EventEmitter | bool, client: redis.Redis, keyspace: KeySpace) -> EventEmitter | None:
        """An emitter option as the SDK's classes take it: an emitter, True (one on ``client``), or False."""
        if events is True:
            return cls(client, keyspace=keyspace)
        return events or None

    # -- conveniences for other job systems ----------------------------------------------------

    # Each takes, besides the field it names, job_event's keywords: job_name, timestamp_ms and
    # the other EventFields.

    def enqueued(self, queue: str, job: JobPayload | str, **fields: Unpack[_AnyFields]) -> None:
        """A job was enqueued (pass the payload to archive it)."""
        self.emit(job_event(EventType.ENQUEUED, queue, job, include_payload=True, **fields))

    def started(self, queue: str, job: JobPayload | str, **fields: Unpack[_AnyFields]) -> None:
        """A worker started a job (``worker_id``, ``attempt``)."""
        self.emit(job_event(EventType.STARTED, queue, job, **fields))

    def completed(
        self, queue: str, job: JobPayload | str, *, duration_ms: float, **fields: Unpack[_BesidesDuration]
    ) -> None:
        """A job finished successfully after ``duration_ms``."""
        self.emit(job_event(EventType.COMPLETED, queue, job, duration_ms=duration_ms, **fields))

    def failed(self, queue: str, job: JobPayload | str, *, error: str, **fields: Unpack[_BesidesError]) -> None:
        """An attempt failed with ``error``."""
        self.emit(job_event(EventType.FAILED, queue, job, error=error, **fields))

    def retried(self, queue: str, job: JobPayload | str, *, delay_ms: int, **fields: Unpack[_BesidesDelay]) -> None:
        """A failed job will be retried after ``delay_ms``."""
        self.emit(job_event(EventType.RETRIED, queue, job, delay_ms=delay_ms, **fields))

    def dead_lettered(self, queue: str, job: JobPayload | str, *, error: str, **fields: Unpack[_BesidesError]) -> None:
        """A job ran out of attempts (or cannot run) and went to the dead-letter list."""
        self.emit(job_event(EventType.DEAD_LETTERED, queue, job, error=error, include_payload=True, **fields))


class EventWriter(ClientHolder):
    """Base of the SDK classes that change queues and record lifecycle events as they do.

    Args:
        client: a redis-py client or a URL.
        keyspace: key names (default: the wire layout).
        events: an emitter, ``True`` for one on the same client, ``False`` for none.
    """

    def __init__(
        self,
        client: redis.Redis | str | None = None,
        *,
        keyspace: KeySpace | None = None,
        events: EventEmitter | bool = True,
    ) -> None:
        self._hold(client)
        self.keyspace = keyspace or KeySpace()
        self.events = EventEmitter.resolve(events, self.client, self.keyspace)
