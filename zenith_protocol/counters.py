"""Per-queue job counters and job duration histogram (PROTOCOL.md 6.6): one HASH per queue.

Writers add to them in the call that records the finished attempt's event and never lower
them, so every console replica reads the same values and trimming the dead-letter list leaves
them alone. The histogram's buckets are stored one field per bucket, not cumulative (each
attempt increments one field); readers accumulate them.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zenith_protocol.events import EventType, JobEvent

__all__ = [
    "COMPLETED_FIELD",
    "DEAD_LETTERED_FIELD",
    "DURATION_BUCKETS_S",
    "DURATION_SUM_FIELD",
    "FAILED_FIELD",
    "CounterIncrements",
    "QueueCounters",
    "bucket_field",
    "counter_field",
    "counter_increments",
]

DURATION_BUCKETS_S: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Upper bounds (seconds) of the duration buckets; a last bucket, ``+Inf``, takes the rest."""

COMPLETED_FIELD = "completed"
FAILED_FIELD = "failed"
DEAD_LETTERED_FIELD = "deadLettered"
DURATION_SUM_FIELD = "durationSumMs"
_BUCKET = "durationLe:"
_BOUND_TEXT = tuple(f"{bound:g}" for bound in DURATION_BUCKETS_S) + ("+Inf",)
_BUCKET_FIELDS = tuple(f"{_BUCKET}{text}" for text in _BOUND_TEXT)
_PER_JOB = (COMPLETED_FIELD, FAILED_FIELD)
"""Fields also counted per job name (``completed:<jobName>``), for attempts that ran a handler."""


def bucket_field(duration_ms: float) -> str:
    """The histogram field an attempt of ``duration_ms`` increments: the smallest bound it does not exceed."""
    return _BUCKET_FIELDS[bisect_left(DURATION_BUCKETS_S, duration_ms / 1000)]


@dataclass(slots=True)
class CounterIncrements:
    """What one batch of events adds to one queue's counters hash: integer fields, and the duration sum.

    A plain dataclass, not a wire model: it is built on the worker's hot path and never stored as such.
    """

    counts: dict[str, int] = field(default_factory=dict)
    duration_sum_ms: float = 0.0

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to field ``name``."""
        self.counts[name] = self.counts.get(name, 0) + amount

    def count(self, name: str, duration_ms: float | None, job_name: str | None) -> None:
        """Add what one event adds: 1 to ``name`` (:func:`counter_field`) and, for an attempt that ran a
        handler (``duration_ms``), its duration bucket, the duration sum and its job name's count."""
        self.add(name)
        if duration_ms is not None and name in _PER_JOB:
            self.add(bucket_field(duration_ms))
            self.duration_sum_ms += duration_ms
            if job_name:
                self.add(f"{name}:{job_name}")


def counter_field(event_type: EventType | str) -> str | None:
    """The counters field an event of ``event_type`` adds 1 to, or ``None`` when it counts nothing."""
    return _FIELDS.get(event_type) if isinstance(event_type, EventType) else None


def counter_increments(events: Iterable[JobEvent]) -> dict[str, CounterIncrements]:
    """Per queue, what ``events`` add to its counters (queues with nothing to add are left out).

    ``completed``, ``failed`` and ``dead_lettered`` events count; an attempt that ran a handler
    (a ``completed`` or ``failed`` event carrying ``durationMs``) also goes into the histogram and
    into its job name's count.
    """
    found: dict[str, CounterIncrements] = {}
    for event in events:
        name = counter_field(event.type)
        if name is not None:
            counters = found.get(event.queue) or found.setdefault(event.queue, CounterIncrements())
            counters.count(name, event.duration_ms, event.job_name)
    return found


_FIELDS = {
    EventType.COMPLETED: COMPLETED_FIELD,
    EventType.FAILED: FAILED_FIELD,
    EventType.DEAD_LETTERED: DEAD_LETTERED_FIELD,
}


def _number(value: Any) -> float:
    """A stored counter value; what is not a finite number reads as 0 (a tolerant reader)."""
    try:
        number = float(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError):
        return 0.0
    return number if math.isfinite(number) and number >= 0 else 0.0


class QueueCounters(BaseModel):
    """One queue's counters hash, read.

    ``buckets`` are cumulative, like a Prometheus histogram: ``(bound, attempts that took at
    most bound seconds)``, ending with ``(inf, duration_count)``.
    """

    model_config = ConfigDict(frozen=True)

    completed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    buckets: tuple[tuple[float, int], ...] = ()
    duration_sum_ms: float = 0.0
    by_job: dict[str, dict[str, int]] = Field(default_factory=dict, description="job name -> field -> count")

    @property
    def duration_count(self) -> int:
        """Attempts in the histogram."""
        return self.buckets[-1][1] if self.buckets else 0

    @classmethod
    def from_hash(cls, raw: Mapping[Any, Any]) -> QueueCounters:
        """Read a counters hash as HGETALL returns it (missing fields count 0; unknown fields are ignored)."""
        fields = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in raw.items()}
        running, buckets = 0, []
        for bound, bucket in zip((*DURATION_BUCKETS_S, math.inf), _BUCKET_FIELDS):
            running += int(_number(fields.get(bucket)))
            buckets.append((float(bound), running))
        by_job: dict[str, dict[str, int]] = {}
        for name, value in fields.items():
            head, sep, job = name.partition(":")
            if sep and job and head in _PER_JOB:
                by_job.setdefault(job, {})[head] = int(_number(value))
        return cls(
            completed=int(_number(fields.get(COMPLETED_FIELD))),
            failed=int(_number(fields.get(FAILED_FIELD))),
            dead_lettered=int(_number(fields.get(DEAD_LETTERED_FIELD))),
            buckets=tuple(buckets),
            duration_sum_ms=_number(fields.get(DURATION_SUM_FIELD)),
            by_job=by_job,
        )
