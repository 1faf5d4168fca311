"""Put in-flight jobs back: a stopping worker's own, and those of workers whose heartbeat expired.

Dead workers are found two ways: through the worker index (a worker that registered, then went
silent), and by a sweep over the processing lists and staged events lists themselves, which also
finds those of workers that never registered or whose index entry is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import cast

import redis

from zenith_protocol import EventType, KeyKind, KeySpace, ProtocolError, decode_worker_queues
from zenith_protocol.workers import HEARTBEAT_TTL_S
from zenith_sdk._wire import text_of
from zenith_sdk.events import EventEmitter, job_event
from zenith_sdk.scripts import REQUEUE, scripts_for

__all__ = [
    "Orphans",
    "find_orphans",
    "put_back_reaped",
    "recover_dead_workers",
    "requeue_processing",
    "write_staged_events",
]

logger = logging.getLogger(__name__)

REQUEUE_BATCH = 500


def requeue_processing(client: redis.Redis, queue: str, worker_id: str, *, keyspace: KeySpace | None = None) -> int:
    """Move every job of one worker's processing list for ``queue`` back to its lane; returns how many."""
    space = keyspace or KeySpace()
    keys = [space.processing(queue, worker_id), *space.lanes_in_poll_order(queue)]
    scripts = scripts_for(client)
    total = 0
    while True:
        moved = int(scripts.call(REQUEUE, keys, [REQUEUE_BATCH]))
        total += moved
        if moved < REQUEUE_BATCH:
            return total


def write_staged_events(
    client: redis.Redis, worker_id: str, *, keyspace: KeySpace | None = None, events: EventEmitter | None = None
) -> int:
    """Append to the stream the events the ended worker ``worker_id`` staged and did not write (PROTOCOL 8.1):
    those of the jobs it acknowledged last. Returns how many."""
    space = keyspace or KeySpace()
    written = _staged_writer(client, space, events).write_staged(worker_id)
    if written:
        logger.info("worker=%s ended with %d events staged; they are in the stream now", worker_id, written)
    return written


def _staged_writer(client: redis.Redis, space: KeySpace, events: EventEmitter | None) -> EventEmitter:
    """``events`` when it writes to ``space``, else an emitter that does: a dead worker's staged events are
    written whether or not the recoverer records events of its own."""
    return events if events is not None and events.keyspace == space else EventEmitter(client, keyspace=space)


def _queues_of(raw: bytes | str | None, worker_id: str) -> list[str]:
    if raw is None:
        return []
    try:
        return decode_worker_queues(raw)
    except ProtocolError as exc:
        logger.warning("worker=%s has an unreadable queue list (%s); its jobs cannot be found", worker_id, exc.reason)
        return []


@dataclass(frozen=True)
class Orphans:
    """What workers that are gone left behind (see :func:`find_orphans`)."""

    processing: dict[str, list[str]]
    """Their processing lists: ``{worker_id: [queue, ...]}``."""
    staged: list[str]
    """The workers whose staged events list (PROTOCOL 8.1) is still there."""


def find_orphans(
    client: redis.Redis,
    keyspace: KeySpace | None = None,
    *,
    ttl_s: float = HEARTBEAT_TTL_S,
    exclude: Collection[str] = (),
    now_ms: int | None = None,
    keys: Iterable[str] | None = None,
) -> Orphans:
    """The processing lists and staged events lists whose worker is gone.

    A worker is gone when its heartbeat key does not exist and its worker index entry is absent
    or older than ``ttl_s``: it never registered, or it stopped beating (a worker that dies with no
    job in hand leaves its staged events only). The lists are found among ``keys`` when a caller
    has walked the key space already, else with one SCAN pass per list pattern: run it now and
    then, not per job.
    """
    space = keyspace or KeySpace()
    if keys is None:
        patterns = (f"{space.queue_prefix}*:processing:*", space.staged_events_pattern())
        keys = (text_of(key) for pattern in patterns for key in client.scan_iter(match=pattern, count=1000))
    lists: dict[str, list[str]] = {}
    staged: set[str] = set()
    for name in keys:
        parsed = space.parse(name)
        if parsed is None or not parsed.part or parsed.part in exclude:
            continue
        if parsed.kind is KeyKind.PROCESSING and parsed.queue:
            lists.setdefault(parsed.part, []).append(parsed.queue)
        elif parsed.kind is KeyKind.STAGED_EVENTS:
            staged.add(parsed.part)
    gone = _gone(client, space, lists.keys() | staged, ttl_s, now_ms)
    processing = {worker_id: sorted(set(lists[worker_id])) for worker_id in sorted(gone & lists.keys())}
    return Orphans(processing, sorted(gone & staged))


def _gone(
    client: redis.Redis, space: KeySpace, worker_ids: Collection[str], ttl_s: float, now_ms: int | None
) -> set[str]:
    """Those of ``worker_ids`` whose heartbeat key does not exist and whose worker index entry is absent or
    older than ``ttl_s``: they never registered, or they stopped beating."""
    if not worker_ids:
        return set()
    workers = list(worker_ids)
    pipe = client.pipeline(transaction=False)
    for worker_id in workers:
        pipe.exists(space.worker(worker_id))
        pipe.zscore(space.worker_index(), worker_id)
    replies = pipe.execute()
    cutoff = (now_ms if now_ms is not None else int(time.time() * 1000)) - int(ttl_s * 1000)
    return {
        worker_id
        for index, worker_id in enumerate(workers)
        if not replies[2 * index] and (replies[2 * index + 1] is None or replies[2 * index + 1] < cutoff)
    }


def recover_dead_workers(
    client: redis.Redis,
    keyspace: KeySpace | None = None,
    *,
    ttl_s: float = HEARTBEAT_TTL_S,
    exclude: Collection[str] = (),
    actor: str = "zenith",
    events: EventEmitter | None = None,
    now_ms: int | None = None,
    sweep: bool = True,
) -> dict[str, dict[str, int]]:
    """Requeue the in-flight jobs of every worker whose heartbeat is gone.

    A worker is dead when its index entry is older than ``ttl_s`` and its heartbeat key has
    expired. Each job is moved by one atomic script call, so concurrent recoverers never put
    a job back twice. With ``sweep``, the processing lists of workers that never registered (or
    whose index entry is gone) are found and put back too, and the events such workers staged are
    written, even when they held no job (:func:`find_orphans`).
    Returns ``{worker_id: {queue: jobs_put_back}}`` for every dead worker handled.
    """
    space = keyspace or KeySpace()
    staged = _staged_writer(client, space, events)  # one for every dead worker
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    cutoff = now_ms - int(ttl_s * 1000)
    members = cast("list[bytes | str]", client.zrangebyscore(space.worker_index(), "-inf", cutoff))
    candidates = [text_of(member) for member in members]
    recovered: dict[str, dict[str, int]] = {}
    for worker_id in candidates:
        if worker_id in exclude or client.exists(space.worker(worker_id)):
            continue
        queues = _queues_of(client.hget(space.worker_queues(), worker_id), worker_id)
        write_staged_events(client, worker_id, keyspace=space, events=staged)
        moved = {queue: requeue_processing(client, queue, worker_id, keyspace=space) for queue in queues}
        # The index entries go last: a recoverer that dies before this line is simply redone.
        pipe = client.pipeline(transaction=False)
        pipe.zrem(space.worker_index(), worker_id)
        pipe.hdel(space.worker_queues(), worker_id)
        pipe.execute()
        recovered[worker_id] = moved
    if sweep:
        orphans = find_orphans(client, keyspace=space, ttl_s=ttl_s, exclude=exclude, now_ms=now_ms)
        for worker_id in sorted(orphans.processing.keys() | set(orphans.staged)):
            moved = recovered.setdefault(worker_id, {})
            write_staged_events(client, worker_id, keyspace=space, events=staged)
            for queue in orphans.processing.get(worker_id, []):
                moved[queue] = moved.get(queue, 0) + requeue_processing(client, queue, worker_id, keyspace=space)
    for worker_id, moved in recovered.items():
        _report(worker_id, moved, actor, events, "is gone")
    return recovered


def take_back_leftovers(
    client: redis.Redis, worker_id: str, queues: Collection[str], *, keyspace: KeySpace, events: EventEmitter | None
) -> dict[str, int]:
    """Requeue what an earlier process with ``worker_id`` left in its processing lists; a worker calls it as it starts.

    A worker id is one process's (PROTOCOL 4.6), so a worker starting under an id that was
    used before (a fixed ``--worker-id`` after a crash) finds the lists of one that died: its
    heartbeat is this worker's now, so no one else would ever put them back.
    """
    before = _queues_of(client.hget(keyspace.worker_queues(), worker_id), worker_id)
    write_staged_events(client, worker_id, keyspace=keyspace, events=events)
    moved = {
        queue: requeue_processing(client, queue, worker_id, keyspace=keyspace)
        for queue in dict.fromkeys([*queues, *before])
    }
    _report(worker_id, moved, worker_id, events, "started again")
    return moved


def _report(worker_id: str, moved: dict[str, int], actor: str, events: EventEmitter | None, why: str) -> None:
    """A ``recovered`` event per queue jobs were put back on, and a log line."""
    records = [
        job_event(EventType.RECOVERED, queue, worker_id=worker_id, actor=actor, count=count)
        for queue, count in moved.items()
        if count
    ]
    if events is not None and records:
        events.emit(*records)
    if records:
        logger.warning("worker=%s %s; put back its in-flight jobs %s", worker_id, why, moved)


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

    Unlike :func:`recover_dead_workers`, it does not wait for a heartbeat to expire: the caller (a
    supervisor that waited for the worker's process) knows the worker can fetch and acknowledge
    nothing any more.

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
    write_staged_events(client, worker_id, keyspace=keyspace, events=events)
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
