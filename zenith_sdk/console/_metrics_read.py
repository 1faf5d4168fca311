"""What one Prometheus scrape reads from Redis: a snapshot of queues, counters, fleet, schedules and alerts.

Every part is read with the SDK's own calls; the per-queue parts (counters hashes, the oldest
job of each lane) take one pipelined round trip each. Discovering counters hashes of queues that
no longer hold keys is a SCAN, reused for :data:`COUNTERS_SCAN_TTL_S` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from zenith_protocol import (
    AlertState,
    ChannelHealth,
    KeySpace,
    ProtocolError,
    QueueSnapshot,
    Schedule,
    ZenithError,
    decode_job,
)
from zenith_protocol.counters import QueueCounters
from zenith_protocol.keys import KeyKind
from zenith_sdk._wire import text_of
from zenith_sdk.alerts import channel_health, read_states
from zenith_sdk.fleet import NodeEntry, WorkerEntry, list_nodes, list_workers
from zenith_sdk.overview import Overview
from zenith_sdk.schedules import Scheduler, next_run_ms

__all__ = ["COUNTERS_SCAN_TTL_S", "MISSED_GRACE_MS", "MetricsReader", "Snapshot"]

COUNTERS_SCAN_TTL_S = 60.0
"""How long the SCAN for counters hashes of queues that hold no keys now is reused."""
MISSED_GRACE_MS = 60_000
"""A schedule run counts as missed once it is this late (tickers run every second or so)."""
_MAX_MISSED = 100
"""Missed runs counted at most per schedule (a schedule down for months is "100 or more" late)."""
ARCHIVE_GROUP = "archive"
"""The events-stream consumer group of the SQL archive (``zenith_archive.archiver.DEFAULT_GROUP``)."""


@dataclass(frozen=True)
class GroupLag:
    """One consumer group of the events stream: entries not yet delivered to it, and delivered but unacknowledged."""

    name: str
    lag: int | None
    pending: int


@dataclass
class Snapshot:
    """Everything one scrape reports, read at ``taken_ms``."""

    taken_ms: int
    overview: Overview
    counters: dict[str, QueueCounters]
    oldest_ms: dict[str, int]
    workers: list[WorkerEntry]
    nodes: list[NodeEntry]
    schedules: list[Schedule]
    alerts: dict[tuple[str, str], AlertState]
    channels: dict[str, ChannelHealth]
    groups: list[GroupLag] = field(default_factory=list)

    @property
    def queues(self) -> list[QueueSnapshot]:
        """The queue snapshots of the overview."""
        return self.overview.queues


class MetricsReader:
    """Reads :class:`Snapshot` objects for one console (thread-safe: scrapes may overlap)."""

    def __init__(self, client: redis.Redis, keyspace: KeySpace) -> None:
        self.client = client
        self.keyspace = keyspace
        self._scheduler = Scheduler(client, keyspace=keyspace, events=False)
        self._lock = threading.Lock()
        self._counted: set[str] = set()
        self._counted_at = float("-inf")

    def read(self, overview: Overview) -> Snapshot:
        """A snapshot around ``overview`` (queues, worker and node counts, firing alerts).

        Raises:
            redis.RedisError: Redis could not be read.
        """
        now = int(time.time() * 1000)
        names = [snap.name for snap in overview.queues]
        return Snapshot(
            taken_ms=now,
            overview=overview,
            counters=self._counters(names),
            oldest_ms=self._oldest(names),
            workers=list_workers(self.client, keyspace=self.keyspace, now_ms=now),
            nodes=list_nodes(self.client, keyspace=self.keyspace, now_ms=now),
            schedules=[entry for entry in self._scheduler.list() if isinstance(entry, Schedule)],
            alerts=read_states(self.client, keyspace=self.keyspace).states,
            channels=channel_health(self.client, keyspace=self.keyspace),
            groups=self._groups(),
        )

    def _counted_queues(self) -> set[str]:
        with self._lock:
            if time.monotonic() - self._counted_at > COUNTERS_SCAN_TTL_S:
                pattern = self.keyspace.queue_counters_pattern()
                found = set()
                for key in self.client.scan_iter(match=pattern, count=1000, _type="hash"):
                    parsed = self.keyspace.parse(text_of(key))
                    if parsed is not None and parsed.kind is KeyKind.QUEUE_COUNTERS and parsed.queue:
                        found.add(parsed.queue)
                self._counted, self._counted_at = found, time.monotonic()
            return set(self._counted)

    def _counters(self, names: Iterable[str]) -> dict[str, QueueCounters]:
        """Every queue's counters hash, one HGETALL each in one round trip (each hash is read atomically)."""
        queues = sorted(set(names) | self._counted_queues())
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            pipe.hgetall(self.keyspace.queue_counters(queue))
        return {queue: QueueCounters.from_hash(raw) for queue, raw in zip(queues, pipe.execute())}

    def _oldest(self, names: list[str]) -> dict[str, int]:
        """Per queue, when its oldest waiting job was created (epoch ms): the tail of each lane, one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for queue in names:
            for lane in self.keyspace.lanes_in_poll_order(queue):
                pipe.lindex(lane, -1)
        tails = pipe.execute() if names else []
        lanes = len(self.keyspace.lanes_in_poll_order("q"))
        oldest: dict[str, int] = {}
        for index, queue in enumerate(names):
            created = [_created_ms(raw) for raw in tails[index * lanes : (index + 1) * lanes]]
            known = [ms for ms in created if ms is not None]
            if known:
                oldest[queue] = min(known)
        return oldest

    def _groups(self) -> list[GroupLag]:
        """The consumer groups of the events stream (none when the stream does not exist yet)."""
        try:
            groups = self.client.xinfo_groups(self.keyspace.events())
        except redis.ResponseError:  # no such key: nothing was ever recorded
            return []
        found = []
        for group in groups:
            info = {text_of(key): value for key, value in group.items()}
            lag = info.get("lag")
            found.append(GroupLag(text_of(info["name"]), int(lag) if lag is not None else None, int(info["pending"])))
        return found


def _created_ms(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    try:
        return decode_job(raw).created_at_ms
    except ProtocolError:
        return None  # a job no reader can use says nothing about waiting time; the doctor reports it


def missed_runs(schedule: Schedule, now_ms: int) -> int:
    """Runs of an enabled ``schedule`` due more than :data:`MISSED_GRACE_MS` ago that no ticker fired yet."""
    due = schedule.next_run_ms
    if not schedule.enabled or due is None:
        return 0
    missed = 0
    try:
        while due <= now_ms - MISSED_GRACE_MS and missed < _MAX_MISSED:
            missed += 1
            due = next_run_ms(schedule.cron, due, schedule.timezone, schedule_id=schedule.id)
    except ZenithError:
        return missed  # an unusable expression: the ticker logs it and the doctor reports it
    return missed
