"""The per-minute history every console shares (WIRE_FACTS 3): jobs finished per minute and queue-total snapshots.

Workers count each finished job in ``<console prefix>throughput:<epoch minute>``; consoles record the
totals of waiting, delayed and failed jobs and of workers once a minute in
``<console prefix>metrics:<name>:<epoch minute>`` (``SET NX``, so many console replicas write each
minute once), both kept an hour. Charts read them back here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from zenith_protocol import KeySpace
from zenith_protocol.canonical import COUNTER_TTL_S

__all__ = ["METRIC_NAMES", "MinuteValue", "metric_history", "record_metrics", "throughput_history"]

METRIC_NAMES = ("waiting", "delayed", "failed", "workers")
"""The totals recorded each minute, as the Node console names them."""
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class MinuteValue:
    """One minute of a series: its epoch minute and value (``None``: nothing recorded that minute)."""

    minute: int
    value: int | None

    @property
    def at_ms(self) -> int:
        """The minute's start, in epoch milliseconds."""
        return self.minute * _MINUTE_MS


def _minutes(minutes: int, now_ms: int | None) -> list[int]:
    if not 1 <= minutes <= 60:
        raise ValueError(f"history covers 1 to 60 minutes (it is kept an hour), got {minutes}")
    current = (int(time.time() * 1000) if now_ms is None else now_ms) // _MINUTE_MS
    return list(range(current - minutes + 1, current + 1))


def _number(raw: object) -> int | None:
    try:
        return int(raw) if raw is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None  # another writer's garbage reads as nothing recorded


def throughput_history(
    client: redis.Redis, *, keyspace: KeySpace | None = None, minutes: int = 60, now_ms: int | None = None
) -> list[MinuteValue]:
    """Jobs finished in each of the last ``minutes`` minutes, oldest first (the current minute last, partial)."""
    space = keyspace or KeySpace()
    span = _minutes(minutes, now_ms)
    values = client.mget([space.throughput(minute) for minute in span])
    return [MinuteValue(minute, _number(raw) or 0) for minute, raw in zip(span, values)]


def metric_history(
    client: redis.Redis, *, keyspace: KeySpace | None = None, minutes: int = 60, now_ms: int | None = None
) -> dict[str, list[MinuteValue]]:
    """Each recorded total (:data:`METRIC_NAMES`) over the last ``minutes`` minutes, oldest first."""
    space = keyspace or KeySpace()
    span = _minutes(minutes, now_ms)
    values = client.mget([space.metric(name, minute) for name in METRIC_NAMES for minute in span])
    series: dict[str, list[MinuteValue]] = {}
    for index, name in enumerate(METRIC_NAMES):
        chunk = values[index * len(span) : (index + 1) * len(span)]
        series[name] = [MinuteValue(minute, _number(raw)) for minute, raw in zip(span, chunk)]
    return series


def record_metrics(
    client: redis.Redis, totals: Mapping[str, int], *, keyspace: KeySpace | None = None, now_ms: int | None = None
) -> bool:
    """Record this minute's ``totals`` unless a console already did; returns whether these were written.

    Raises:
        ValueError: a name outside :data:`METRIC_NAMES` or a negative total.
    """
    for name, value in totals.items():
        if name not in METRIC_NAMES or value < 0:
            raise ValueError(f"a metric is one of {', '.join(METRIC_NAMES)} with a total of 0 or more")
    space = keyspace or KeySpace()
    minute = _minutes(1, now_ms)[0]
    pipe = client.pipeline(transaction=False)
    for name, value in totals.items():
        pipe.set(space.metric(name, minute), value, nx=True, ex=COUNTER_TTL_S)
    return any(pipe.execute())
