"""Job lifecycle events, usable by any Python job system (Celery, RQ, home-grown workers).

Each event writes, in one round trip: the live log line (PUBLISH on the logs channel and
the capped history list), the per-minute throughput counter for finished jobs, the queue's
counters hash (finished, failed and dead-lettered jobs, the duration histogram: PROTOCOL 6.6)
and an entry in the capped events stream that the SQL archive consumes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypedDict

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
    encode_event,
    encode_job,
    encode_log,
)
from zenith_protocol.canonical import COUNTER_TTL_S
from zenith_protocol.counters import DURATION_SUM_FIELD, CounterIncrements, counter_increments
from zenith_protocol.events import EVENTS_STREAM_MAXLEN
from zenith_protocol.workers import LOG_HISTORY_CAP
from zenith_sdk.connection import ClientHolder
from zenith_sdk.scripts import EVENTS, ScriptArg, ScriptPipeline, scripts_for

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["EventEmitter", "EventFields", "EventWriter", "job_event", "log_entry_for"]

_FINISHED = frozenset({EventType.COMPLETED, EventType.FAILED})
_LEVELS = {
    EventType.COMPLETED: LogLevel.SUCCESS,
    EventType.FAILED: LogLevel.ERROR,
    EventType.DEAD_LETTERED: LogLevel.ERROR,
    EventType.RETRIED: LogLevel.WARN,
    EventType.RECOVERED: LogLevel.WARN,
    EventType.DELETED: LogLevel.WARN,
}


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
    return JobEvent(
        type=event_type,
        queue=queue,
        timestamp=timestamp_ms if timestamp_ms is not None else _now_ms(),
        job_name=job_name,
        **fields,
    )


def _describe(event: JobEvent) -> str:
    what = f"Job {event.job_name or '?'} ({event.job_id})" if event.job_id else f"Queue {event.queue}"
    kind = event.type.value if isinstance(event.type, EventType) else str(event.type)
    text = f"{what} {kind.replace('_', '-')}"
    if event.duration_ms is not None:
        text += f" in {event.duration_ms:.0f} ms"
    if event.delay_ms is not None:
        when = "next attempt" if event.type == EventType.RETRIED else "runs"
        text += f", {when} in {event.delay_ms / 1000:g} s"
    if event.action is not None:
        action = event.action.value if hasattr(event.action, "value") else event.action
        text += f": {action}" + (f" x{event.count}" if event.count is not None else "")
    if event.actor:
        text += f" by {event.actor}"
    if event.error:
        text += f": {event.error}"
    return text


def log_entry_for(event: JobEvent) -> LogEntry:
    """The live log line the console shows for ``event``."""
    level = _LEVELS.get(event.type, LogLevel.INFO) if isinstance(event.type, EventType) else LogLevel.INFO
    return LogEntry(
        level=level,
        message=_describe(event),
        worker_id=event.worker_id or event.actor or "zenith",
        queue=event.queue,
        job_id=event.job_id,
        timestamp=datetime.fromtimestamp(event.timestamp / 1000, tz=timezone.utc),
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

    def _call(self, events: Sequence[JobEvent]) -> tuple[list[str], list[ScriptArg]]:
        """KEYS and ARGV of the events script for ``events``."""
        finished: dict[int, int] = {}
        pairs: list[ScriptArg] = []
        for event in events:
            if event.type in _FINISHED:
                minute = event.timestamp // 60_000
                finished[minute] = finished.get(minute, 0) + 1
            pairs.append(encode_event(event))
            pairs.append(encode_log(log_entry_for(event)) if self.live_log else "")
        return self._script_call(pairs, finished, counter_increments(events))

    def _script_call(
        self, pairs: Sequence[ScriptArg], finished: dict[int, int], counters: dict[str, CounterIncrements]
    ) -> tuple[list[str], list[ScriptArg]]:
        """KEYS and ARGV of the events script: ``pairs`` of event JSON and log line, finished jobs per
        minute, and what to add to each queue's counters hash."""
        space = self.keyspace
        keys = [
            space.events(),
            space.logs_history(),
            *(space.throughput(minute) for minute in finished),
            *(space.queue_counters(queue) for queue in counters),
        ]
        head: list[ScriptArg] = [
            self.stream_maxlen,
            space.logs_channel(),
            LOG_HISTORY_CAP,
            COUNTER_TTL_S,
            len(pairs) // 2,
            len(counters),
            *finished.values(),
        ]
        for increments in counters.values():
            head.append(len(increments.counts))
            for field, amount in increments.counts.items():
                head += (field, amount)
            sums = [(DURATION_SUM_FIELD, repr(increments.duration_sum_ms))] if increments.duration_sum_ms else []
            head.append(len(sums))
            for field, total in sums:
                head += (field, total)
        return keys, [*head, *pairs]

    def write(self, pipe: ScriptPipeline | Pipeline, events: Sequence[JobEvent]) -> bool:
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

    def emit_encoded(self, events: Sequence[str | bytes]) -> None:
        """Append events already encoded (canonical event JSON) to the stream, without live log lines."""
        if events:
            pairs: list[ScriptArg] = [part for event in events for part in (event, "")]
            self.scripts.call(EVENTS, *self._script_call(pairs, {}, {}))

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
