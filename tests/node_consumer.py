"""The OLD Node.js consumer, transliterated to Python: the reference "Node consumer" of the interop tests.

It emulates the algorithm WIRE_FACTS describes (sections 1, 3 and 9), quirks included, and nothing of
our worker: it shares no code with ``zenith_sdk.worker`` so that a test comparing the two compares two
independent readings of the wire format.

One poll, queue by queue in the order given:

1. promote the queue's due delayed jobs (``ZRANGEBYSCORE {q}:delayed 0 now``; each is ``ZREM``-ed and
   ``LPUSH``-ed onto the base queue, since the lane is known only from the key). This happens *before*
   the paused check, so a paused queue still releases its due delayed jobs (the quirk our worker must
   not copy);
2. skip the queue when ``{q}:paused`` is ``"1"``;
3. ``RPOP`` the lanes ``critical``, ``high``, the base queue, then ``low``; the first job found runs. The
   pop is destructive (no processing list): a consumer that dies mid-job loses the job;
4. group FIFO: a job with a ``groupId`` first ``SADD``s it to ``queue:active``; if the group was already
   there the job is ``RPUSH``-ed onto ``queue:pending:{groupId}`` and polling goes on. When the group's
   job finishes (either way) the group is ``SREM``-ed and its next pending job (``LPOP``) is moved back to
   the consumer end of the base queue;
5. the attempt counter starts at 1: the first push writes ``attempts: 0`` and the running attempt is
   ``attempts + 1``;
6. on failure, if ``attempt < maxAttempts`` (default 3) the job is re-pushed with incremented
   ``attempts`` (the attempts made so far) onto the delayed set, due after
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
from typing import Any

import redis
from wire_data import NODE_PUSH_ORDER

from zenith_protocol import KeySpace

__all__ = ["NodeConsumer", "NodeJob", "Processed", "push_order"]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY_AFTER_S = 1.0
DEFAULT_RETRY_MULTIPLIER = 2.0
MAX_RETRY_DELAY_S = 3600
FAILED_CAP = 1000
LANES: tuple[str | None, ...] = ("critical", "high", None, "low")


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
            self._promote_due(queue)
            if self.client.get(self.keyspace.paused(queue)) == b"1":
                continue
            for lane in LANES:
                while True:
                    raw = self.client.rpop(self.keyspace.lane(queue, lane))
                    if raw is None:
                        break
                    result = self._process(queue, lane, _as_bytes(raw))
                    if result is not None:
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

    def _promote_due(self, queue: str) -> None:
        delayed = self.keyspace.delayed(queue)
        for raw in self.client.zrangebyscore(delayed, 0, self.clock_ms()):
            if self.client.zrem(delayed, _as_bytes(raw)):
                self.client.lpush(self.keyspace.queue(queue), _as_bytes(raw))

    def _process(self, queue: str, lane: str | None, raw: bytes) -> Processed | None:
        try:
            fields = json.loads(raw)
            data = json.loads(fields["data"])
        except (ValueError, KeyError, TypeError) as exc:
            return Processed(queue, lane, raw, None, f"{type(exc).__name__}: {exc}", "lost")
        group = fields.get("groupId")
        if isinstance(group, str) and group:
            if not self.client.sadd(self.keyspace.group_active(queue), group):
                self.client.rpush(self.keyspace.group_pending(queue, group), raw)
                return None
        name = data.get("job") or data.get("class") or fields.get("className")
        properties = data.get("properties") or {}
        job = NodeJob(str(fields.get("id")), name, properties, int(fields.get("attempts") or 0) + 1, fields)
        try:
            handler = self.handlers.get(name) if isinstance(name, str) else None
            if handler is None:
                raise LookupError(f"Job {name} is not registered")
            handler(job)
        except Exception as exc:
            outcome = self._fail(queue, job, str(exc) or type(exc).__name__)
            result = Processed(queue, lane, raw, job, str(exc) or type(exc).__name__, outcome)
        else:
            result = Processed(queue, lane, raw, job, None, "completed")
        if isinstance(group, str) and group:
            self._release_group(queue, group)
        return result

    def _fail(self, queue: str, job: NodeJob, error: str) -> str:
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
            self.client.zadd(self.keyspace.delayed(queue), {push_order(retried): now + delay_s * 1000})
            return "retried"
        failed = {**fields, "createdAt": now, "attempts": job.attempt, "error": error, "failedAt": now}
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.keyspace.failed(queue), _whole_object(failed))
        pipe.ltrim(self.keyspace.failed(queue), 0, FAILED_CAP - 1)
        pipe.execute()
        return "dead_lettered"

    def _release_group(self, queue: str, group: str) -> None:
        self.client.srem(self.keyspace.group_active(queue), group)
        nxt = self.client.lpop(self.keyspace.group_pending(queue, group))
        if nxt is not None:
            self.client.rpush(self.keyspace.queue(queue), _as_bytes(nxt))
