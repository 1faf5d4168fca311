"""Put in-flight jobs back: a stopping worker's own, and those of workers whose heartbeat expired."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection

import redis

from zenith_protocol import EventType, KeySpace
from zenith_protocol.workers import HEARTBEAT_TTL_S
from zenith_sdk.events import EventEmitter, job_event
from zenith_sdk.scripts import Scripts

__all__ = ["recover_dead_workers", "requeue_processing"]

logger = logging.getLogger(__name__)

REQUEUE_BATCH = 500


def requeue_processing(client: redis.Redis, scripts: Scripts, space: KeySpace, queue: str, worker_id: str) -> int:
    """Move every job of one worker's processing list for ``queue`` back to its lane; returns how many."""
    keys = [space.processing(queue, worker_id), *space.lanes_in_poll_order(queue), space.group_active(queue)]
    total = 0
    while True:
        moved = int(scripts.requeue(keys=keys, args=[REQUEUE_BATCH], client=client))
        total += moved
        if moved < REQUEUE_BATCH:
            return total


def _queues_of(raw: bytes | str | None, worker_id: str) -> list[str]:
    if raw is None:
        return []
    try:
        queues = json.loads(raw)
    except ValueError:
        queues = None
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        logger.warning("worker=%s has an unreadable queue list %r; its jobs cannot be found", worker_id, raw)
        return []
    return queues


def recover_dead_workers(
    client: redis.Redis,
    space: KeySpace | None = None,
    *,
    ttl_s: float = HEARTBEAT_TTL_S,
    exclude: Collection[str] = (),
    actor: str = "zenith",
    events: EventEmitter | None = None,
    now_ms: int | None = None,
) -> dict[str, dict[str, int]]:
    """Requeue the in-flight jobs of every worker whose heartbeat is gone.

    A worker is dead when its index entry is older than ``ttl_s`` and its heartbeat key has
    expired. Each job is moved by one atomic script call, so concurrent recoverers never put
    a job back twice. Returns ``{worker_id: {queue: jobs_put_back}}``.
    """
    space = space or KeySpace()
    scripts = Scripts(client)
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    cutoff = now_ms - int(ttl_s * 1000)
    candidates = [
        w.decode() if isinstance(w, bytes) else str(w)
        for w in client.zrangebyscore(space.worker_index(), "-inf", cutoff)
    ]
    recovered: dict[str, dict[str, int]] = {}
    for worker_id in candidates:
        if worker_id in exclude or client.exists(space.worker(worker_id)):
            continue
        queues = _queues_of(client.hget(space.worker_queues(), worker_id), worker_id)
        moved = {queue: requeue_processing(client, scripts, space, queue, worker_id) for queue in queues}
        # The index entries go last: a recoverer that dies before this line is simply redone.
        pipe = client.pipeline(transaction=False)
        pipe.zrem(space.worker_index(), worker_id)
        pipe.hdel(space.worker_queues(), worker_id)
        pipe.execute()
        records = [
            job_event(EventType.RECOVERED, queue, worker_id=worker_id, actor=actor, count=count)
            for queue, count in moved.items()
            if count
        ]
        if events is not None and records:
            events.emit(*records)
        recovered[worker_id] = moved
        if any(moved.values()):
            logger.warning("worker=%s is gone; put back its in-flight jobs %s", worker_id, moved)
    return recovered
