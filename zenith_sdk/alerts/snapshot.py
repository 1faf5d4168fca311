"""Gathering what alert rules look at into a :class:`~zenith_sdk.alerts.evaluate.Snapshot`, in a few round trips.

A :class:`SnapshotGatherer` lives as long as an alert loop. It discovers queues, worker heartbeat
keys and pulse node keys with SCAN once, then reuses what it found: it discovers again every
``rediscover_every`` gatherings, or as soon as the queue index or the worker index changes size.
A gathering then reads only what the rules need:

- queue counts, with the count script over the keys discovery found plus each queue's waiting
  lanes and failed list, which may appear after discovery (one round trip);
- one pipeline with the oldest waiting job of each lane holding jobs (``LINDEX -1``) of the queues latency
  rules watch, the processing lists of the queues stuck-job rules watch, the next entries of the
  events stream (failures, completions and starts, see ``_window``), the schedule index, channel
  health and the archive consumer groups (``XINFO GROUPS``), plus the two index sizes;
- worker heartbeats (``list_workers``) and pulse nodes (``list_nodes``) from the cached keys.

A part that cannot be read is ``None`` in the snapshot (rules that need it go to ``error``);
:meth:`SnapshotGatherer.gather` never raises for Redis trouble.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, TypeVar

import redis
from redis.exceptions import RedisError

from zenith_protocol import AlertRule, KeyKind, KeySpace
from zenith_protocol.pulse import PULSE_STALE_AFTER_MS
from zenith_sdk._wire import text_of
from zenith_sdk.alerts._parts import archive_lags, channel_failures, created_at, job_id, node_reading
from zenith_sdk.alerts._window import EventWindow
from zenith_sdk.alerts.evaluate import NodeReading, QueueReading, ScheduleReading, Snapshot
from zenith_sdk.alerts.matching import select_any
from zenith_sdk.control.queues import QueueKeys, discover_queues, queue_snapshots
from zenith_sdk.fleet import list_nodes, list_workers, scan_node_keys, scan_worker_keys

__all__ = ["REDISCOVER_EVERY", "SnapshotGatherer", "SnapshotNeeds"]

logger = logging.getLogger(__name__)

REDISCOVER_EVERY = 20
"""Gatherings between two discoveries (SCAN passes), when the indexes do not change first."""
PROCESSING_READ = 100
"""Entries of a processing list read to find its longest-running job."""
MAX_STARTED_MINUTES = 24 * 60
"""How far back (in minutes) the event stream is read, once, for the starts of running jobs when stuck-job
rules exist; a running job whose start is older (or was trimmed from the stream) counts from when a
gatherer first saw it in a processing list."""
NODE_MEMORY_MS = 24 * 3600 * 1000
"""How long a pulse node whose key expired is still reported (stale), so node-down rules see it."""

_QUEUE_TYPES = frozenset(
    {"backlog", "latency", "failure", "failure_count", "failure_ratio", "stuck_job", "worker_lost"}
)
_NODE_TYPES = frozenset({"node_cpu", "node_ram", "node_disk", "node_down"})


def _type(rule: AlertRule) -> str:
    return rule.type.value if isinstance(rule.type, Enum) else str(rule.type)


@dataclass(frozen=True)
class SnapshotNeeds:
    """What a set of rules needs read: parts, windows and the queue globs of the per-queue extras."""

    queues: bool = False
    workers: bool = False
    nodes: bool = False
    schedules: bool = False
    channels: bool = False
    archive: bool = False
    windows: frozenset[int] = frozenset()
    latency_globs: tuple[str | None, ...] = ()
    stuck_globs: tuple[str | None, ...] = ()
    started_minutes: int = 0
    """How far back the starts of running jobs are read (a job's start is known only from its ``started`` event)."""

    @classmethod
    def of(cls, rules: Iterable[AlertRule]) -> SnapshotNeeds:
        """What ``rules`` (enabled ones) need."""
        kinds: set[str] = set()
        windows: set[int] = set()
        latency: list[str | None] = []
        stuck: list[str | None] = []
        started = 0
        for rule in rules:
            if not rule.enabled:
                continue
            kind = _type(rule)
            kinds.add(kind)
            if kind in ("failure_count", "failure_ratio"):
                windows.add(rule.window_minutes)
            elif kind == "latency":
                latency.append(rule.queue)
            elif kind == "stuck_job":
                stuck.append(rule.queue)
                started = MAX_STARTED_MINUTES
        return cls(
            queues=bool(kinds & _QUEUE_TYPES),
            workers="worker_lost" in kinds,
            nodes=bool(kinds & _NODE_TYPES),
            schedules="schedule_missed" in kinds,
            channels="channel_failing" in kinds,
            archive="archive_lag" in kinds,
            windows=frozenset(windows),
            latency_globs=tuple(latency),
            stuck_globs=tuple(stuck),
            started_minutes=started,
        )


@dataclass
class _Discovered:
    queues: dict[str, QueueKeys] = field(default_factory=dict)
    worker_keys: list[str] | None = None
    node_keys: list[str] | None = None
    marks: tuple[object, object] | None = None
    schedule_queues: dict[str, str | None] = field(default_factory=dict)


class SnapshotGatherer:
    """Reads snapshots for an alert loop, reusing its discoveries between gatherings (not thread-safe).

    Args:
        client: a redis-py client (kept open; the caller owns it).
        keyspace: key names.
        rediscover_every: gatherings between two discoveries.
    """

    def __init__(
        self, client: redis.Redis, *, keyspace: KeySpace | None = None, rediscover_every: int = REDISCOVER_EVERY
    ) -> None:
        if rediscover_every < 1:
            raise ValueError(f"rediscover_every must be at least 1, got {rediscover_every}")
        self.client = client
        self.keyspace = keyspace or KeySpace()
        self.rediscover_every = rediscover_every
        self.discoveries = 0
        """How many discoveries (SCAN passes) this gatherer made."""
        self.gatherings = 0
        self._found: _Discovered | None = None
        self._since_discovery = 0
        self._window = EventWindow(self.keyspace.events())
        self._first_seen: dict[tuple[str, str], int] = {}
        self._nodes_seen: dict[str, NodeReading] = {}

    # -- discovery -------------------------------------------------------------------------------

    def _discover(self, needs: SnapshotNeeds) -> _Discovered:
        found = self._found
        stale = found is None or self._since_discovery >= self.rediscover_every
        wants_workers = needs.workers and (found is None or found.worker_keys is None)
        wants_nodes = needs.nodes and (found is None or found.node_keys is None)
        if not (stale or wants_workers or wants_nodes) and found is not None:
            return found
        fresh = _Discovered()
        if needs.queues or needs.workers:
            discovered = discover_queues(self.client, self.keyspace)
            fresh.queues = {name: keys.with_job_lists(self.keyspace) for name, keys in discovered.items()}
        if needs.workers:
            fresh.worker_keys = scan_worker_keys(self.client, keyspace=self.keyspace)
        if needs.nodes:
            fresh.node_keys = scan_node_keys(self.client, keyspace=self.keyspace)
        fresh.marks = found.marks if found is not None else None
        self.discoveries += 1
        self._since_discovery = 0
        self._found = fresh
        return fresh

    def forget(self) -> None:
        """Discover again at the next gathering."""
        self._found = None

    # -- gathering -------------------------------------------------------------------------------

    def gather(self, rules: Sequence[AlertRule], *, now_ms: int | None = None) -> Snapshot:
        """A snapshot of what ``rules`` look at; parts no rule needs, or that could not be read, are ``None``."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        needs = SnapshotNeeds.of(rules)
        self.gatherings += 1
        self._since_discovery += 1
        try:
            found = self._discover(needs)
        except RedisError as exc:
            logger.warning("alert snapshot: discovery failed (%s); every part is unread", exc)
            return Snapshot(taken_ms=now_ms, queues=None, nodes=None, schedules=None, channels=None, archive_lag=None)
        reads = _Reads(self, needs, found, now_ms)
        reads.run()
        return reads.snapshot()


class _Reads:
    """One gathering: the reads it queues, their replies, and the parts built from them."""

    def __init__(self, owner: SnapshotGatherer, needs: SnapshotNeeds, found: _Discovered, now_ms: int) -> None:
        self.owner = owner
        self.client = owner.client
        self.space = owner.keyspace
        self.needs = needs
        self.found = found
        self.now_ms = now_ms
        self.replies: dict[str, Any] = {}
        self.counts: dict[str, tuple[int, int]] | None = None
        self.filled: dict[str, list[str]] = {}
        """Per queue, the waiting lanes the counts found jobs in."""
        self.workers: dict[str, int] | None = None
        self.workers_total: int | None = None
        self.nodes: dict[str, NodeReading] | None = None
        self.latency = self._queues_for(needs.latency_globs)
        self.stuck = self._queues_for(needs.stuck_globs)

    def _queues_for(self, globs: tuple[str | None, ...]) -> list[str]:
        return select_any(globs, self.found.queues)

    def run(self) -> None:
        if self.needs.queues:
            self._read_counts()
        self._read_pipeline()
        if self.needs.workers:
            self._read_workers()
        if self.needs.nodes:
            self._read_nodes()

    def _read_counts(self) -> None:
        try:
            snapshots = queue_snapshots(self.client, self.space, self.found.queues.values())
        except RedisError as exc:
            logger.warning("alert snapshot: queue counts unread (%s)", exc)
            return
        self.counts = {snap.name: (snap.waiting, snap.failed) for snap in snapshots}
        for snap in snapshots:
            filled = {self.space.lane(snap.name, lane) for lane in snap.lanes}
            if snap.waiting > sum(snap.lanes.values()):
                filled.add(self.space.queue(snap.name))
            self.filled[snap.name] = [key for key in self.space.lanes_in_poll_order(snap.name) if key in filled]

    def _waiting_lanes(self, name: str) -> list[str]:
        """The lanes of ``name`` to look for its oldest job in: those the counts found jobs in, else all."""
        found = self.filled.get(name)
        return list(self.space.lanes_in_poll_order(name)) if found is None else found

    # -- the main pipeline ---------------------------------------------------------------------

    def _read_pipeline(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        names: list[str] = []

        def queue(name: str, command: Any) -> None:
            names.append(name)
            command(pipe)

        queue("marks", lambda p: (p.scard(self.space.queue_index()), p.zcard(self.space.worker_index())))
        for name in self.latency:
            for key in self._waiting_lanes(name):
                queue(f"oldest {name} {key}", lambda p, key=key: p.lindex(key, -1))
        for name in self.stuck:
            for key in self._processing(name):
                queue(f"active {name} {key}", lambda p, key=key: p.lrange(key, 0, PROCESSING_READ - 1))
        window = self.owner._window
        if self.needs.windows or self.stuck:
            window.ensure_span(max(*self.needs.windows, self.needs.started_minutes, 1), self.now_ms)
            queue("events", window.queue_read)
        if self.needs.schedules:
            queue("schedules", lambda p: p.zrange(self.space.schedules(), 0, -1, withscores=True))
        if self.needs.channels:
            queue("channels", lambda p: p.hgetall(self.space.alerts_channels()))
        if self.needs.archive:
            queue("archive", lambda p: p.xinfo_groups(self.space.events()))
        try:
            replies = pipe.execute(raise_on_error=False)
        except RedisError as exc:
            logger.warning("alert snapshot: reads failed (%s)", exc)
            self.replies = {"failed": exc}
            return
        # "marks" queued two commands: fold them into one reply.
        replies = [tuple(replies[:2]), *replies[2:]]
        self.replies = dict(zip(names, replies))
        self._check_marks()

    def _processing(self, name: str) -> list[str]:
        keys = self.found.queues[name].keys or {}
        return [key for key, kind in keys.items() if kind is KeyKind.PROCESSING]

    def _check_marks(self) -> None:
        marks = self.replies.get("marks")
        if marks is None or any(isinstance(value, Exception) for value in marks):
            return
        if self.found.marks is not None and self.found.marks != marks:
            self.owner.forget()  # a queue or worker came or went: discover at the next gathering
        self.found.marks = marks

    def _reply(self, name: str) -> Any:
        reply = self.replies.get(name, self.replies.get("failed"))
        return None if isinstance(reply, Exception) else reply

    def _read_workers(self) -> None:
        try:
            entries = list_workers(
                self.client, keyspace=self.space, now_ms=self.now_ms, include_stale=False, keys=self.found.worker_keys
            )
        except RedisError as exc:
            logger.warning("alert snapshot: workers unread (%s)", exc)
            return
        per_queue: dict[str, int] = {}
        for entry in entries:
            for name in set(entry.queues):
                per_queue[name] = per_queue.get(name, 0) + 1
        self.workers, self.workers_total = per_queue, len(entries)

    def _read_nodes(self) -> None:
        try:
            entries = list_nodes(self.client, keyspace=self.space, now_ms=self.now_ms, keys=self.found.node_keys)
        except RedisError as exc:
            logger.warning("alert snapshot: pulse nodes unread (%s)", exc)
            return
        seen = self.owner._nodes_seen
        for entry in entries:
            reading = node_reading(entry)
            if reading is not None:
                seen[f"{reading.service}/{reading.node_id}"] = reading
        nodes: dict[str, NodeReading] = {}
        for name, reading in list(seen.items()):
            if self.now_ms - reading.last_seen_ms > NODE_MEMORY_MS:
                del seen[name]
                continue
            stale = self.now_ms - reading.last_seen_ms > PULSE_STALE_AFTER_MS
            nodes[name] = reading if reading.stale == stale else replace(reading, stale=stale)
        self.nodes = nodes

    # -- building the parts --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return Snapshot(
            taken_ms=self.now_ms,
            queues=_part("queues", self._queues) if self.needs.queues else None,
            nodes=self.nodes,
            schedules=_part("schedules", self._schedules) if self.needs.schedules else None,
            channels=_part("channels", self._channels) if self.needs.channels else None,
            archive_lag=_part("archive lag", self._archive) if self.needs.archive else None,
            workers_total=self.workers_total,
        )

    def _queues(self) -> dict[str, QueueReading] | None:
        if self.counts is None or (self.needs.workers and self.workers is None):
            return None
        window = self._window_part()
        if (self.needs.windows or self.stuck) and window is None:
            return None
        oldest = self._oldest()
        active = self._active(window)
        readings: dict[str, QueueReading] = {}
        for name, (waiting, failed) in sorted(self.counts.items()):
            failed_in: dict[int, int] = {}
            completed_in: dict[int, int] = {}
            for minutes in sorted(self.needs.windows):
                assert window is not None
                failed_in[minutes], completed_in[minutes] = window.totals(name, minutes, self.now_ms)
            readings[name] = QueueReading(
                name=name,
                waiting=waiting,
                failed=failed,
                oldest_waiting_age_s=oldest.get(name) if name in oldest else None,
                failed_in_window=failed_in,
                completed_in_window=completed_in,
                longest_active_s=active.get(name),
                workers=(self.workers or {}).get(name, 0),
            )
        return readings

    def _window_part(self) -> EventWindow | None:
        if not (self.needs.windows or self.stuck):
            return None
        first = self._reply("events")
        if first is None:
            return None
        window = self.owner._window
        try:
            window.catch_up(self.client, first)
        except RedisError as exc:
            logger.warning("alert snapshot: events stream unread (%s)", exc)
            return None
        window.prune(self.now_ms)
        return window

    def _oldest(self) -> dict[str, float | None]:
        """Age in seconds of the oldest waiting job of each latency queue (0 when none waits)."""
        ages: dict[str, float | None] = {}
        for name in self.latency:
            created: list[int] = []
            unknown = False
            for key in self._waiting_lanes(name):
                reply = self._reply(f"oldest {name} {key}")
                if reply is None:
                    continue
                at = created_at(reply)
                if at is None:
                    unknown = True
                else:
                    created.append(at)
            if created:
                ages[name] = max(self.now_ms - min(created), 0) / 1000
            else:
                ages[name] = None if unknown else 0.0
        return ages

    def _active(self, window: EventWindow | None) -> dict[str, float]:
        """Seconds the longest-running job of each stuck-job queue has run (0 when none runs)."""
        first_seen = self.owner._first_seen
        present: set[tuple[str, str]] = set()
        longest: dict[str, float] = {}
        for name in self.stuck:
            started: list[int] = []
            for key in self._processing(name):
                for raw in self._reply(f"active {name} {key}") or []:
                    running = job_id(raw)
                    mark = (name, running)
                    present.add(mark)
                    start = window.started.get(running) if window is not None else None
                    if start is not None and start[0] == name:
                        started.append(start[1])
                    else:
                        started.append(first_seen.setdefault(mark, self.now_ms))
            longest[name] = max(self.now_ms - min(started), 0) / 1000 if started else 0.0
        for mark in set(first_seen) - present:
            del first_seen[mark]
        return longest

    def _schedules(self) -> dict[str, ScheduleReading] | None:
        reply = self._reply("schedules")
        if reply is None:
            return None
        due = {text_of(member): int(score) for member, score in reply}
        known = self.found.schedule_queues
        missing = [schedule_id for schedule_id in due if schedule_id not in known]
        if missing:
            try:
                pipe = self.client.pipeline(transaction=False)
                for schedule_id in missing:
                    pipe.hget(self.space.schedule(schedule_id), "queue")
                for schedule_id, queue in zip(missing, pipe.execute()):
                    known[schedule_id] = text_of(queue) if queue is not None else None
            except RedisError as exc:
                logger.warning("alert snapshot: schedules unread (%s)", exc)
                return None
        return {
            schedule_id: ScheduleReading(
                id=schedule_id, queue=known.get(schedule_id), late_s=max(self.now_ms - next_run, 0) / 1000
            )
            for schedule_id, next_run in sorted(due.items())
        }

    def _channels(self) -> dict[str, int] | None:
        reply = self._reply("channels")
        return None if reply is None else channel_failures(reply)

    def _archive(self) -> dict[str, int] | None:
        return archive_lags(self.replies.get("archive", self.replies.get("failed")))


P = TypeVar("P")


def _part(name: str, build: Callable[[], P | None]) -> P | None:
    """A part built from its replies; one that cannot be built is unread (None), never an error out of a gathering."""
    try:
        return build()
    except RedisError as exc:
        logger.warning("alert snapshot: %s unread (%s)", name, exc)
    except Exception:
        # An unexpected reply must not stop the other parts: the rules that need this one go to `error`.
        logger.exception("alert snapshot: %s could not be built", name)
    return None
