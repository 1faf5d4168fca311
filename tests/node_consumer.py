"""The OLD Node.js producer and consumer, transliterated to Python: the "Node side" of the interop tests.

They emulate the algorithms WIRE_FACTS describes (sections 1, 3, 9 and 10), quirks included, and nothing
of our worker or producer: they share no code with ``zenith_sdk`` so that a test comparing the two
compares two independent readings of the wire format.

The producer (:class:`NodeProducer`) pushes a job without a group onto its lane (``LPUSH``), or, when it
is delayed, into its lane's delayed set (``queue:{q}:{lane}:delayed``, or ``queue:{q}:delayed`` for the
base lane). A job with a ``groupId`` goes through one script over ``queue:{q}``, ``queue:active`` and
``queue:pending:{g}``: if the group is not a member of ``queue:active`` it is added and the job is
``LPUSH``-ed onto the base list (whatever its priority; its delay is ignored), else the job is
``RPUSH``-ed onto the group's pending list.

One poll of the consumer, queue by queue in the order given, lane by lane (``critical``, ``high``, the
base queue, ``low``):

1. the lane's delayed set: ``ZRANGE 0 0 WITHSCORES``; a due job is ``ZREM``-ed and runs at once. This
   happens *before* the paused check, so a paused lane still releases its due delayed jobs (the quirk
   our worker must not copy);
2. skip the lane when its own ``:paused`` flag is ``"1"`` (the base flag pauses only the base lane);
3. ``RPOP`` the lane; the job found runs. The pop is destructive (no processing list): a consumer that
   dies mid-job loses the job;
4. group FIFO: a fetched job's group was admitted at push, so the consumer runs it without looking.
   When a grouped job completes, or fails for good, one script ``LPOP``s the group's pending list and
   ``LPUSH``es what came out onto the base list of the queue, or ``SREM``s the group when nothing was
   pending. (A retried grouped job keeps its group; what the Node code does there was not observed.)
5. the attempt counter starts at 1: the first push writes ``attempts: 0`` and the running attempt is
   ``attempts + 1``;
6. on failure, if ``attempt < maxAttempts`` (default 3) the job is re-pushed with incremented
   ``attempts`` (the attempts made so far) onto its lane's delayed set, due after
   ``delaySeconds = ceil(retryAfterSeconds(1) * retryMultiplier(2) ^ (n - 1))`` seconds, capped at an hour,
   where ``n`` is the attempt being scheduled: 2 s before attempt 2, then 4 s before attempt 3. The re-push
   re-serialises the job in the producer's push order, which rewrites ``createdAt`` and drops the fields
   that path does not write (``priority``, ``retryAfterSeconds``, ``retryMultiplier``, anything unknown);
7. otherwise the caller's whole object (``className`` before ``data``, ``priority`` and ``retry*`` kept)
   gets ``error`` and ``failedAt``, is ``LPUSH``-ed onto ``{q}:failed`` and the list is trimmed with
   ``LTRIM 0 999``;
8. an entry that is not a JSON job cannot even be parsed: it was already popped, so it is lost.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from wire_data import NODE_PUSH_ORDER

from zenith_protocol import KeySpace

__all__ = ["NodeConsumer", "NodeJob", "NodeProducer", "Processed", "push_order"]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY_AFTER_S = 1.0
DEFAULT_RETRY_MULTIPLIER = 2.0
MAX_RETRY_DELAY_S = 3600
FAILED_CAP = 1000
LANES: tuple[str | None, ...] = ("critical", "high", None, "low")

_GROUP_PUSH = """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('LPUSH', KEYS[1], ARGV[2])
  return 1
end
redis.call('RPUSH', KEYS[3], ARGV[2])
return 0
"""
"""The Node producer's group push: KEYS base list, queue:active, queue:pending:{g}; ARGV group, job."""

_GROUP_COMPLETE = """
local nxt = redis.call('LPOP', KEYS[3])
if nxt then
  redis.call('LPUSH', KEYS[1], nxt)
  return 1
end
redis.call('SREM', KEYS[2], ARGV[1])
return 0
"""
"""The Node completion script: KEYS base list, queue:active, queue:pending:{g}; ARGV group."""


@dataclass(frozen=True)
class NodeJob:
    """What a handler of the old consumer sees."""

    id: str
    name: str | None
    properties: dict[str, Any]
    attempt: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class Processed:
    """One job the consumer popped and what became of it."""

    queue: str
    lane: str | None
    raw: bytes
    job: NodeJob | None
    error: str | None
    outcome: str
    """``completed``, ``retried``, ``dead_lettered`` or ``lost`` (unparseable)."""


NodeHandler = Callable[[NodeJob], object]


def push_order(job: Mapping[str, Any]) -> str:
    """Serialise ``job`` as the Node producer's push path does: push field order, compact, raw UTF-8."""
    out = {key: job[key] for key in NODE_PUSH_ORDER if key in job and job[key] is not None}
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def _whole_object(job: Mapping[str, Any]) -> str:
    """Serialise the caller's whole object, as the dead-letter path does (``className`` before ``data``)."""
    head = [key for key in ("id", "type", "className", "data") if key in job]
    out = {key: job[key] for key in head}
    out.update({key: value for key, value in job.items() if key not in out})
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def _as_bytes(value: object) -> bytes:
    """A reply of the raw (``decode_responses=False``) client: always bytes."""
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes from Redis, got {type(value).__name__}; use a raw client")
    return value


def _local_now_ms() -> int:
    return int(time.time() * 1000)


class NodeConsumer:
    """Consumes ``queues`` exactly like the old Node consumer (see the module docstring).

    Args:
        client: a redis-py client.
        keyspace: where the queues live.
        queues: queue names, polled in this order.
        handlers: job name -> handler; a job without a handler fails (and is retried, as in Node).
        clock_ms: the consumer's clock (Node used the local ``Date.now()``).
    """

    def __init__(
        self,
        client: redis.Redis,
        keyspace: KeySpace,
        queues: Sequence[str],
        handlers: Mapping[str, NodeHandler],
        *,
        clock_ms: Callable[[], int] = _local_now_ms,
    ) -> None:
        self.client = client
        self.keyspace = keyspace
        self.queues = tuple(queues)
        self.handlers = dict(handlers)
        self.clock_ms = clock_ms
        self.processed: list[Processed] = []

    def poll_once(self) -> Processed | None:
        """Run at most one job; ``None`` when every (unpaused) lane is empty."""
        for queue in self.queues:
            for lane in LANES:
                raw: object = self._due(queue, lane)
                if raw is None:
                    if self.client.get(self.keyspace.paused(queue, lane)) == b"1":
                        continue
                    raw = self.client.rpop(self.keyspace.lane(queue, lane))
                if raw is not None:
                    result = self._process(queue, lane, _as_bytes(raw))
                    self.processed.append(result)
                    return result
        return None

    def drain(self, limit: int = 1000) -> list[Processed]:
        """Poll until nothing is ready (or ``limit`` jobs ran); returns what ran, in order."""
        done: list[Processed] = []
        while len(done) < limit:
            result = self.poll_once()
            if result is None:
                break
            done.append(result)
        return done

    # -- the steps ------------------------------------------------------------------------------

    def _due(self, queue: str, lane: str | None) -> bytes | None:
        """The lane's first delayed job if it is due (taken out of the set), else None."""
        delayed = self.keyspace.delayed(queue, lane)
        first = cast("list[tuple[bytes, float]]", self.client.zrange(delayed, 0, 0, withscores=True))
        if first and first[0][1] <= self.clock_ms() and self.client.zrem(delayed, first[0][0]):
            return _as_bytes(first[0][0])
        return None

    def _process(self, queue: str, lane: str | None, raw: bytes) -> Processed:
        try:
            fields = json.loads(raw)
            data = json.loads(fields["data"])
        except (ValueError, KeyError, TypeError) as exc:
            return Processed(queue, lane, raw, None, f"{type(exc).__name__}: {exc}", "lost")
        group = fields.get("groupId")
        name = data.get("job") or data.get("class") or fields.get("className")
        properties = data.get("properties") or {}
        job = NodeJob(str(fields.get("id")), name, properties, int(fields.get("attempts") or 0) + 1, fields)
        try:
            handler = self.handlers.get(name) if isinstance(name, str) else None
            if handler is None:
                raise LookupError(f"Job {name} is not registered")
            handler(job)
        except Exception as exc:
            outcome = self._fail(queue, lane, job, str(exc) or type(exc).__name__)
            result = Processed(queue, lane, raw, job, str(exc) or type(exc).__name__, outcome)
        else:
            result = Processed(queue, lane, raw, job, None, "completed")
        if isinstance(group, str) and group and result.outcome != "retried":
            self._release_group(queue, group)
        return result

    def _fail(self, queue: str, lane: str | None, job: NodeJob, error: str) -> str:
        fields = job.fields
        max_attempts = fields.get("maxAttempts") or DEFAULT_MAX_ATTEMPTS
        now = self.clock_ms()
        if job.attempt < max_attempts:
            after = fields.get("retryAfterSeconds")
            multiplier = fields.get("retryMultiplier")
            after = DEFAULT_RETRY_AFTER_S if after is None else after
            multiplier = DEFAULT_RETRY_MULTIPLIER if multiplier is None else multiplier
            scheduled = job.attempt + 1
            delay_s = min(math.ceil(after * multiplier ** (scheduled - 1)), MAX_RETRY_DELAY_S)
            retried = {**fields, "createdAt": now, "delaySeconds": delay_s, "attempts": job.attempt}
            self.client.zadd(self.keyspace.delayed(queue, lane), {push_order(retried): now + delay_s * 1000})
            return "retried"
        failed = {**fields, "createdAt": now, "attempts": job.attempt, "error": error, "failedAt": now}
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.keyspace.failed(queue), _whole_object(failed))
        pipe.ltrim(self.keyspace.failed(queue), 0, FAILED_CAP - 1)
        pipe.execute()
        return "dead_lettered"

    def _release_group(self, queue: str, group: str) -> None:
        keys = [
            self.keyspace.queue(queue),
            self.keyspace.group_active(queue),
            self.keyspace.group_pending(queue, group),
        ]
        self.client.eval(_GROUP_COMPLETE, 3, *keys, group)


class NodeProducer:
    """Pushes jobs exactly as the Node producer does (see the module docstring)."""

    def __init__(self, client: redis.Redis, keyspace: KeySpace, *, clock_ms: Callable[[], int] = _local_now_ms) -> None:
        self.client = client
        self.keyspace = keyspace
        self.clock_ms = clock_ms

    def push(
        self,
        queue: str,
        job_id: str,
        name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        group: str | None = None,
        priority: str | None = None,
        delay_s: int = 0,
    ) -> bytes:
        """Push one job; returns its bytes as written."""
        now = self.clock_ms()
        fields: dict[str, Any] = {
            "id": job_id,
            "type": "json",
            "data": json.dumps({"job": name, "properties": dict(properties or {})}, separators=(",", ":")),
            "createdAt": now,
            "delaySeconds": delay_s,
            "attempts": 0,
            "maxAttempts": DEFAULT_MAX_ATTEMPTS,
            "groupId": group,
        }
        raw = push_order(fields).encode()
        space = self.keyspace
        if group:
            keys = [space.queue(queue), space.group_active(queue), space.group_pending(queue, group)]
            self.client.eval(_GROUP_PUSH, 3, *keys, group, raw)
        elif delay_s:
            self.client.zadd(space.delayed(queue, priority), {raw: now + delay_s * 1000})
        else:
            self.client.lpush(space.lane(queue, priority), raw)
        return raw
