"""The state of one worker run: what Redis looks like at each read, and what the worker wrote."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from zenith_protocol import LANES_IN_POLL_ORDER, KeySpace, ProtocolError, decode_worker_queues
from zenith_sdk.conformance._plan import WorkerPlan
from zenith_sdk.conformance._report import fields_of

__all__ = ["POLL_S", "Run", "Snapshot", "as_bytes"]

POLL_S = 0.05
"""How often the run reads Redis."""
_WORKER_REFRESH_S = 1.0
_STREAM_PAGE = 1000

Lane = str | None


def as_bytes(value: object) -> bytes:
    """A Redis reply as bytes, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


@dataclass
class Snapshot:
    """One read of the run's keys, taken in one ``MULTI`` with the server time ``ms``.

    ``lanes`` and ``delayed`` are those of the jobs queue (left end first; delayed sets lowest
    score first); ``failed`` holds the whole dead-letter lists of the jobs and lanes queues;
    ``processing`` and ``heartbeats`` are per known worker.
    """

    ms: int
    previous_ms: int
    lanes: dict[Lane, list[bytes]]
    delayed: dict[Lane, list[tuple[bytes, int]]]
    failed: dict[str, list[bytes]]
    dead_head: bytes | None
    dead_length: int
    processing: dict[str, list[bytes]]
    heartbeats: dict[str, bytes | None]
    group_held: bool
    group_pending: int


@dataclass
class Written:
    """A value the worker under test wrote, kept for the canonical check."""

    structure: str
    where: str
    created: bool


@dataclass
class Run:
    """Shared by the checks of one worker run."""

    client: redis.Redis
    plan: WorkerPlan
    workers: set[str] = field(default_factory=set)
    written: dict[bytes, Written] = field(default_factory=dict)
    milestones: set[str] = field(default_factory=set)
    active: set[str] = field(default_factory=set)
    log_lines: list[bytes] = field(default_factory=list)
    events: list[tuple[str, dict[bytes, bytes]]] = field(default_factory=list)
    started_ms: int = 0
    stream_start: str = "0-0"
    _ids: dict[bytes, str | None] = field(default_factory=dict)
    last_read_ms: int = 0
    _workers_read_at: float = 0.0

    @property
    def space(self) -> KeySpace:
        return self.plan.keyspace

    def server_ms(self) -> int:
        """The Redis server's clock, in ms."""
        seconds, micros = self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def job_id(self, raw: bytes) -> str | None:
        """The ``id`` of a job's bytes, however they are written (None when they are no JSON object)."""
        if raw not in self._ids:
            fields = fields_of(raw)
            value = fields.get("id") if fields else None
            self._ids[raw] = value if isinstance(value, str) else None
        return self._ids[raw]

    def wrote(self, structure: str, raw: bytes, where: str, *, created: bool) -> None:
        """Keep ``raw``, which the worker wrote at ``where``, for the canonical check."""
        self.written.setdefault(raw, Written(structure, where, created))

    def find(self, entries: list[bytes], job_id: str) -> tuple[int, bytes] | None:
        """Index and bytes of the job ``job_id`` in a list read left to right."""
        for index, raw in enumerate(entries):
            if self.job_id(raw) == job_id:
                return index, raw
        return None

    def find_delayed(self, snap: Snapshot, job_id: str) -> tuple[Lane, bytes, int] | None:
        """Lane, bytes and score of ``job_id`` in a delayed set of the jobs queue."""
        for lane, members in snap.delayed.items():
            for raw, score in members:
                if self.job_id(raw) == job_id:
                    return lane, raw, score
        return None

    # -- reading --------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Read the run's keys in one transaction."""
        self._refresh_workers()
        space, plan = self.space, self.plan
        workers = sorted(self.workers)
        pipe = self.client.pipeline(transaction=True)
        pipe.time()
        for lane in LANES_IN_POLL_ORDER:
            pipe.lrange(space.lane(plan.jobs, lane), 0, -1)
        for lane in LANES_IN_POLL_ORDER:
            pipe.zrange(space.delayed(plan.jobs, lane), 0, -1, withscores=True)
        pipe.lrange(space.failed(plan.jobs), 0, -1)
        pipe.lrange(space.failed(plan.lanes), 0, -1)
        pipe.llen(space.failed(plan.dead))
        pipe.lindex(space.failed(plan.dead), 0)
        pipe.sismember(space.group_active(plan.jobs), plan.group)
        pipe.llen(space.group_pending(plan.jobs, plan.group))
        for worker in workers:
            pipe.get(space.worker(worker))
            pipe.lrange(space.processing(plan.jobs, worker), 0, -1)
        replies = iter(pipe.execute())
        seconds, micros = next(replies)
        ms = int(seconds) * 1000 + int(micros) // 1000
        snap = Snapshot(
            ms=ms,
            previous_ms=self.last_read_ms or ms,
            lanes={lane: [as_bytes(raw) for raw in next(replies)] for lane in LANES_IN_POLL_ORDER},
            delayed={lane: [(as_bytes(m), int(s)) for m, s in next(replies)] for lane in LANES_IN_POLL_ORDER},
            failed={plan.jobs: _list(next(replies)), plan.lanes: _list(next(replies))},
            dead_length=int(next(replies)),
            dead_head=_optional(next(replies)),
            group_held=bool(next(replies)),
            group_pending=int(next(replies)),
            heartbeats={},
            processing={},
        )
        for worker in workers:
            snap.heartbeats[worker] = _optional(next(replies))
            snap.processing[worker] = _list(next(replies))
        self.last_read_ms = ms
        return snap

    def _refresh_workers(self) -> None:
        """Add the workers whose queue list names one of the run's queues (read about once a second)."""
        now = time.monotonic()
        if now - self._workers_read_at < _WORKER_REFRESH_S:
            return
        self._workers_read_at = now
        self.workers.update(self.listening_workers())

    def listening_workers(self) -> set[str]:
        """Ids of the workers whose ``zenith:worker-queues`` entry names one of the run's queues."""
        found = set()
        for worker, value in cast("dict[Any, Any]", self.client.hgetall(self.space.worker_queues())).items():
            try:
                queues = decode_worker_queues(value)
            except ProtocolError:
                continue
            if set(self.plan.queues) & set(queues):
                found.add(as_bytes(worker).decode("utf-8", "replace"))
        return found

    def scan(self, pattern: str) -> Iterator[str]:
        """Keys matching ``pattern`` (SCAN, deduplicated)."""
        seen = set()
        for key in self.client.scan_iter(match=pattern, count=1000):
            name = as_bytes(key).decode("utf-8", "replace")
            if name not in seen:
                seen.add(name)
                yield name

    def read_events(self) -> None:
        """The stream entries written since the run began (entries of other queues included)."""
        start = f"({self.stream_start}"
        while True:
            reply = self.client.xrange(self.space.events(), start, "+", _STREAM_PAGE)
            page = cast("list[tuple[Any, dict[Any, Any]]]", reply)
            for entry_id, fields in page:
                self.events.append((as_bytes(entry_id).decode(), {as_bytes(k): as_bytes(v) for k, v in fields.items()}))
            if len(page) < _STREAM_PAGE:
                return
            start = f"({as_bytes(page[-1][0]).decode()}"

    def stream_end(self) -> str:
        """The id of the stream's newest entry (``0-0`` when it is empty)."""
        newest = self.client.xrevrange(self.space.events(), max="+", min="-", count=1)
        return as_bytes(newest[0][0]).decode() if newest else "0-0"


def _list(reply: Any) -> list[bytes]:
    return [as_bytes(raw) for raw in reply]


def _optional(reply: Any) -> bytes | None:
    return None if reply is None else as_bytes(reply)
