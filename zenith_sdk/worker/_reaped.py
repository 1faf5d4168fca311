"""Put back at once what a worker process known to have ended held: its supervisor saw it die.

:func:`~zenith_sdk.worker.recover_dead_workers` must wait for a heartbeat to expire, because
from outside a silent worker and a dead one look alike. The process that started a worker and
waited for its exit knows: the worker can fetch and acknowledge nothing any more, so its jobs
can go back now rather than a heartbeat TTL and a recovery interval later.
"""

from __future__ import annotations

from collections.abc import Collection

import redis

from zenith_protocol import KeySpace
from zenith_sdk.events import EventEmitter
from zenith_sdk.worker._recovery import _queues_of, _report, requeue_processing

__all__ = ["put_back_reaped"]


def put_back_reaped(
    client: redis.Redis,
    worker_id: str,
    queues: Collection[str],
    *,
    keyspace: KeySpace,
    events: EventEmitter | None = None,
    actor: str = "zenith-supervisor",
) -> dict[str, int]:
    """Requeue the processing lists of the ended worker ``worker_id`` and remove its registration.

    Only for a worker whose process is known to have ended (its parent waited for it). The lists
    of ``queues`` and of the queues the worker registered are put back; a ``recovered`` event per
    queue with jobs says so. Returns ``{queue: jobs_put_back}``.

    Raises:
        redis.RedisError: Redis refused or could not be reached; what is left is recovered the
            usual way once the worker's heartbeat has expired.
    """
    # The heartbeat goes first: from then on every recoverer agrees the worker is gone, and each
    # list is moved by one atomic script, so a recoverer running at the same time puts no job back twice.
    client.delete(keyspace.worker(worker_id))
    registered = _queues_of(client.hget(keyspace.worker_queues(), worker_id), worker_id)
    moved = {
        queue: requeue_processing(client, queue, worker_id, keyspace=keyspace)
        for queue in dict.fromkeys([*queues, *registered])
    }
    # The registration goes last, as in recover_dead_workers: one that fails before this is redone.
    pipe = client.pipeline(transaction=False)
    pipe.zrem(keyspace.worker_index(), worker_id)
    pipe.hdel(keyspace.worker_queues(), worker_id)
    pipe.execute()
    _report(worker_id, moved, actor, events, "ended")
    return moved
