"""Failures, completions and running jobs per queue, followed from the lifecycle event stream.

Workers keep no per-queue failure counter in Redis: the throughput counter (PROTOCOL 6.4) counts
every finished attempt of every queue together. What a conforming worker does write per queue is
a ``failed`` or ``completed`` event for every attempt that ends and a ``started`` event for every
attempt that begins (section 8). :class:`EventWindow` reads the stream from where it stopped,
one bounded XRANGE per call, and keeps per-minute counts per queue for the longest window asked
for, plus the start time of each attempt still running. A queue whose workers write no events
(the Node consumer) counts no failures here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from zenith_protocol import EventType, ProtocolError, decode_event_fields
from zenith_sdk._wire import text_of

__all__ = ["READ_COUNT", "EventWindow"]

logger = logging.getLogger(__name__)

READ_COUNT = 10_000
"""Stream entries one XRANGE reads."""
MAX_READS = 20
"""XRANGE calls one :meth:`EventWindow.catch_up` makes at most; the rest is read on the next call."""
_MINUTE_MS = 60_000
_STARTED_KEPT_MS = 24 * 3600 * 1000
"""How long the start of an attempt with no end seen is remembered."""


@dataclass
class _Counts:
    failed: int = 0
    completed: int = 0


@dataclass
class EventWindow:
    """Per-minute failed and completed attempts per queue, and running attempts, from the events stream."""

    stream: str
    span_minutes: int = 0
    cursor: str | None = None
    past_cursor: bool = False
    """Whether the entry at :attr:`cursor` was read (then reading goes on after it)."""
    minutes: dict[str, dict[int, _Counts]] = field(default_factory=dict)
    started: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Job id -> (queue, start ms) of attempts started and not yet seen to end."""

    def ensure_span(self, minutes: int, now_ms: int) -> None:
        """Cover at least the last ``minutes`` minutes; a longer span than before restarts the reading."""
        if self.cursor is None or minutes > self.span_minutes:
            self.span_minutes = max(minutes, self.span_minutes, 1)
            self.cursor = f"{max(now_ms - self.span_minutes * _MINUTE_MS, 0)}-0"
            self.past_cursor = False
            self.minutes.clear()

    def queue_read(self, pipe: Any) -> None:
        """Queue the next XRANGE on ``pipe`` (its reply goes to :meth:`consume`)."""
        pipe.xrange(self.stream, min=self._after(), max="+", count=READ_COUNT)

    def _after(self) -> str:
        cursor = self.cursor or "0-0"
        return f"({cursor}" if self.past_cursor else cursor

    def consume(self, entries: list[Any]) -> bool:
        """Count ``entries`` (an XRANGE reply); returns whether a full batch came (more may wait)."""
        for entry_id, fields in entries:
            self.cursor, self.past_cursor = text_of(entry_id), True
            try:
                event = decode_event_fields(fields)
            except ProtocolError:
                continue  # not an event this reader can use; the doctor reports it
            self._count(event.type, event.queue, event.timestamp, event.job_id)
        return len(entries) >= READ_COUNT

    def catch_up(self, client: Any, first: list[Any]) -> None:
        """Count ``first`` (read in the caller's pipeline), then read on while batches come full."""
        more = self.consume(first)
        reads = 1
        while more and reads < MAX_READS:
            more = self.consume(client.xrange(self.stream, min=self._after(), max="+", count=READ_COUNT))
            reads += 1

    def _count(self, kind: object, queue: str, at_ms: int, job_id: str | None) -> None:
        if kind in (EventType.FAILED, EventType.COMPLETED):
            counts = self.minutes.setdefault(queue, {}).setdefault(at_ms // _MINUTE_MS, _Counts())
            if kind is EventType.FAILED:
                counts.failed += 1
            else:
                counts.completed += 1
            if job_id is not None:
                self.started.pop(job_id, None)
        elif kind is EventType.STARTED and job_id is not None:
            self.started[job_id] = (queue, at_ms)

    def prune(self, now_ms: int) -> None:
        """Forget minutes older than the span and starts older than a day."""
        oldest = (now_ms - self.span_minutes * _MINUTE_MS) // _MINUTE_MS
        for queue in list(self.minutes):
            kept = {minute: counts for minute, counts in self.minutes[queue].items() if minute >= oldest}
            if kept:
                self.minutes[queue] = kept
            else:
                del self.minutes[queue]
        self.started = {
            job: (queue, at) for job, (queue, at) in self.started.items() if now_ms - at <= _STARTED_KEPT_MS
        }

    def totals(self, queue: str, window_minutes: int, now_ms: int) -> tuple[int, int]:
        """Failed and completed attempts of ``queue`` in the last ``window_minutes`` (whole minutes)."""
        oldest = (now_ms - window_minutes * _MINUTE_MS) // _MINUTE_MS
        failed = completed = 0
        for minute, counts in self.minutes.get(queue, {}).items():
            if minute >= oldest:
                failed += counts.failed
                completed += counts.completed
        return failed, completed
