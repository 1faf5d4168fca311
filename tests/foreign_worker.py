"""A worker written from the spec alone, as a Go or PHP team would: the "other SDK" of the conformance tests.

It uses plain redis-py and the protocol's encoders (``zenith_protocol``), and nothing of ``zenith_sdk``:
a conformance run against it checks the spec, not our worker runtime. It runs one job at a time and
follows spec sections 4 (fetch script with promotion and pauses, retries, dead letters, FIFO group
release, undecodable entries, unhandled jobs), 6.1 (heartbeat) and 8/6.3 (events with log lines).

Each field of :class:`Breaks` changes exactly one behaviour, the way a real SDK might get it wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis

from zenith_protocol import (
    LANES_IN_POLL_ORDER,
    EventType,
    JobEvent,
    JobPayload,
    KeySpace,
    LogEntry,
    LogLevel,
    ProtocolError,
    WorkerHeartbeat,
    WorkerStatus,
    decode_job,
    encode_event,
    encode_heartbeat,
    encode_job,
    encode_log,
)

__all__ = ["Breaks", "ForeignWorker", "one_second_short", "spec_backoff"]

_FETCH = """
if redis.call('GET', KEYS[13]) == '1' then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, 4 do
  if redis.call('GET', KEYS[8 + i]) ~= '1' then
    for _, raw in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4 + i], '-inf', now, 'LIMIT', 0, 100)) do
      redis.call('ZREM', KEYS[4 + i], raw)
      redis.call('LPUSH', KEYS[i], raw)
    end
  end
end
for i = 1, 4 do
  if redis.call('GET', KEYS[8 + i]) ~= '1' then
    local raw = redis.call('LMOVE', KEYS[i], KEYS[14], 'RIGHT', 'LEFT')
    if raw then return {i, raw} end
  end
end
return false
"""
"""KEYS: 4 lanes in the order polled, their delayed sets, their paused flags, the queue's flag, processing."""

_SETTLE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[3] == 'retry' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[4]), ARGV[2])
  return 1
end
if ARGV[3] == 'dead' then
  redis.call('LPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], 0, 999)
end
if ARGV[5] ~= '' then
  local nxt = redis.call('LPOP', KEYS[4])
  if nxt then
    local lanes = {critical = KEYS[5], high = KEYS[6], low = KEYS[8]}
    local ok, job = pcall(cjson.decode, nxt)
    local lane = ok and type(job) == 'table' and lanes[job['priority']] or KEYS[7]
    redis.call('LPUSH', lane, nxt)
  else
    redis.call('SREM', KEYS[3], ARGV[5])
  end
end
return 1
"""
"""KEYS: processing, target (delayed set or failed list), group set, pending list, lanes critical/high/base/low.
ARGV: fetched bytes, new bytes, mode (ack/retry/dead), delay ms, group id or ''."""


def spec_backoff(job: JobPayload, failed_attempt: int) -> int:
    """4.3: min(3600, ceil(retryAfterSeconds x retryMultiplier ^ n)) after attempt n failed."""
    after = 1.0 if job.retry_after_seconds is None else job.retry_after_seconds
    multiplier = 2.0 if job.retry_multiplier is None else job.retry_multiplier
    return int(min(3600, math.ceil(after * multiplier**failed_attempt)))


def one_second_short(job: JobPayload, failed_attempt: int) -> int:
    """A common mistake: the exponent counts from the failed attempt minus one (1 s, then 2 s)."""
    return spec_backoff(job, failed_attempt - 1)


@dataclass(frozen=True)
class Breaks:
    """What this worker gets wrong (nothing by default)."""

    lane_order: tuple[str | None, ...] = LANES_IN_POLL_ORDER
    backoff: Callable[[JobPayload, int], int] = spec_backoff
    canonical: bool = True
    events: bool = True
    register_before_fetch: bool = True


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Busy:
    job: JobPayload | None = None


@dataclass
class ForeignWorker:
    """Runs the conformance jobs from ``queues``, one at a time, in a thread of its own."""

    client: redis.Redis
    keyspace: KeySpace
    queues: Sequence[str]
    breaks: Breaks = field(default_factory=Breaks)
    worker_id: str = field(default_factory=lambda: f"foreign-{os.getpid()}-{os.urandom(3).hex()}")
    heartbeat_interval_s: float = 5.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._busy = _Busy()
        self._registered = False
        self._threads: list[threading.Thread] = []
        self._fetch = self.client.register_script(_FETCH)
        self._settle = self.client.register_script(_SETTLE)
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "conformance.succeed": lambda properties: None,
            "conformance.fail": self._fail,
            "conformance.sleep": lambda properties: time.sleep(float(properties.get("ms", 0)) / 1000),
        }

    @staticmethod
    def _fail(properties: dict[str, Any]) -> None:
        raise RuntimeError(str(properties.get("message", "failed")))

    def start(self) -> None:
        thread = threading.Thread(target=self._loop, name=self.worker_id, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.keyspace.worker(self.worker_id))
        pipe.zrem(self.keyspace.worker_index(), self.worker_id)
        pipe.hdel(self.keyspace.worker_queues(), self.worker_id)
        pipe.execute()

    # -- registration and heartbeat ----------------------------------------------------------------

    def _register(self) -> None:
        self._beat()
        self._registered = True
        thread = threading.Thread(target=self._beating, name=f"{self.worker_id}-heartbeat", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _beating(self) -> None:
        while not self._stop.wait(self.heartbeat_interval_s):
            self._beat()

    def _beat(self) -> None:
        job = self._busy.job
        heartbeat = WorkerHeartbeat(
            id=self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=list(self.queues),
            timestamp=datetime.now(timezone.utc),
            status=WorkerStatus.BUSY if job else WorkerStatus.IDLE,
            current_job_id=job.id if job else None,
            job_name=job.name if job else None,
            language="go",
        )
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keyspace.worker(self.worker_id), encode_heartbeat(heartbeat), ex=15)
        pipe.zadd(self.keyspace.worker_index(), {self.worker_id: _now_ms()})
        pipe.hset(self.keyspace.worker_queues(), self.worker_id, json.dumps(list(self.queues)))
        pipe.execute()

    # -- the loop ------------------------------------------------------------------------------------

    def _loop(self) -> None:
        if self.breaks.register_before_fetch:
            self._register()
        while not self._stop.is_set():
            fetched = self._next()
            if fetched is None:
                self._stop.wait(0.02)
                continue
            self._run(*fetched)
            if not self._registered:
                self._register()

    def _next(self) -> tuple[str, str | None, bytes] | None:
        space, order = self.keyspace, self.breaks.lane_order
        for queue in self.queues:
            keys = [space.lane(queue, lane) for lane in order]
            keys += [space.delayed(queue, lane) for lane in order]
            keys += [space.paused(queue, lane) for lane in order]
            keys += [space.paused(queue), space.processing(queue, self.worker_id)]
            reply = self._fetch(keys=keys)
            if reply:
                return queue, order[int(reply[0]) - 1], reply[1]
        return None

    def _run(self, queue: str, lane: str | None, raw: bytes) -> None:
        try:
            job = decode_job(raw)
        except ProtocolError as exc:
            self._undecodable(queue, raw, exc)
            return
        attempt = (job.attempts or 0) + 1
        handler = self.handlers.get(job.name or "")
        if handler is None:
            self._failed(queue, lane, raw, job, attempt, f"no handler for {job.name}", retry=False)
            return
        self._emit(queue, job, EventType.STARTED, attempt=attempt)
        self._busy.job = job
        started = time.perf_counter()
        try:
            handler(job.properties)
        except Exception as exc:
            self._busy.job = None
            self._failed(queue, lane, raw, job, attempt, str(exc), retry=True)
            return
        self._busy.job = None
        self._settle_call(queue, lane, raw, "", "ack", 0, job)
        self._emit(queue, job, EventType.COMPLETED, attempt=attempt, duration_ms=(time.perf_counter() - started) * 1000)

    def _failed(
        self, queue: str, lane: str | None, raw: bytes, job: JobPayload, attempt: int, error: str, *, retry: bool
    ) -> None:
        self._emit(queue, job, EventType.FAILED, attempt=attempt, error=error)
        if retry and attempt < (job.max_attempts or 3):
            delay_s = self.breaks.backoff(job, attempt)
            updated = job.model_copy(update={"attempts": attempt, "delay_seconds": delay_s, "error": error})
            self._settle_call(queue, lane, raw, self._bytes(updated), "retry", delay_s * 1000, job)
            self._emit(queue, job, EventType.RETRIED, attempt=attempt, delay_ms=delay_s * 1000)
            return
        updated = job.model_copy(update={"attempts": attempt, "error": error, "failed_at_ms": _now_ms()})
        self._settle_call(queue, lane, raw, self._bytes(updated), "dead", 0, job)
        self._emit(queue, updated, EventType.DEAD_LETTERED, attempt=attempt, error=error)

    def _undecodable(self, queue: str, raw: bytes, exc: ProtocolError) -> None:
        now = _now_ms()
        wrapper = JobPayload.create(
            "zenith.invalid-payload",
            {"raw": raw.decode("utf-8")},
            job_id=f"invalid-{hashlib.sha1(raw).hexdigest()[:16]}",
        )
        error = f"invalid payload: {exc.kind.value}: {exc.reason}"
        wrapper = wrapper.model_copy(update={"max_attempts": 1, "error": error, "failed_at_ms": now})
        self._settle_call(queue, None, raw, self._bytes(wrapper), "dead", 0, None)
        self._emit(queue, wrapper, EventType.DEAD_LETTERED, error=error)

    def _bytes(self, job: JobPayload) -> str:
        text = encode_job(job)
        return text if self.breaks.canonical else json.dumps(json.loads(text))  # spaces, \\u escapes

    def _settle_call(
        self, queue: str, lane: str | None, raw: bytes, new: str, mode: str, delay_ms: int, job: JobPayload | None
    ) -> None:
        space = self.keyspace
        group = job.group_id if job and job.group_id else ""
        target = space.delayed(queue, lane) if mode == "retry" else space.failed(queue)
        keys = [space.processing(queue, self.worker_id), target]
        keys += [space.group_active(queue), space.group_pending(queue, group or "-")]
        keys += [space.lane(queue, name) for name in LANES_IN_POLL_ORDER]
        self._settle(keys=keys, args=[raw, new, mode, delay_ms, group])

    # -- events ---------------------------------------------------------------------------------------

    def _emit(self, queue: str, job: JobPayload, kind: EventType, **fields: Any) -> None:
        if not self.breaks.events:
            return
        event = JobEvent(
            type=kind,
            queue=queue,
            timestamp=_now_ms(),
            job_id=job.id,
            job_name=job.name,
            worker_id=self.worker_id,
            enqueued_at_ms=job.created_at_ms,
            **fields,
        )
        level = {
            EventType.COMPLETED: LogLevel.SUCCESS,
            EventType.FAILED: LogLevel.ERROR,
            EventType.DEAD_LETTERED: LogLevel.ERROR,
            EventType.RETRIED: LogLevel.WARN,
        }.get(kind, LogLevel.INFO)
        line = LogEntry(
            level=level,
            message=f"{job.name} {kind.value}",
            worker_id=self.worker_id,
            queue=queue,
            job_id=job.id,
            timestamp=datetime.now(timezone.utc),
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.keyspace.events(), {"event": encode_event(event)}, maxlen=100_000, approximate=True)
        pipe.publish(self.keyspace.logs_channel(), encode_log(line))
        pipe.lpush(self.keyspace.logs_history(), encode_log(line))
        pipe.ltrim(self.keyspace.logs_history(), 0, 99)
        pipe.execute()
