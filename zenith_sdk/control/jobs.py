"""Jobs one at a time, and whole-queue switches: list, get, retry, delete, promote, pause, purge.

Jobs are addressed by id. Single-job operations run the same atomic chunked script as bulk
operations, restricted to one id, so they share its guarantees.
"""

from __future__ import annotations

from typing import cast

import redis

from zenith_protocol import (
    ConfigError,
    EventType,
    KeySpace,
    NotFoundError,
    OperatorAction,
    validate_queue_name,
)
from zenith_sdk.control._pick import IdMatcher, first_match
from zenith_sdk.control.bulk import BulkAction, JobEntry, JobState, _check_queue, _sources, bulk
from zenith_sdk.events import EventEmitter, job_event

__all__ = [
    "clear_failed",
    "delete_job",
    "get_job",
    "list_jobs",
    "pause",
    "promote_job",
    "purge",
    "resume",
    "retry_job",
]

MAX_PAGE = 1000


def list_jobs(
    client: redis.Redis,
    queue: str,
    state: JobState,
    *,
    keyspace: KeySpace | None = None,
    offset: int = 0,
    limit: int = 50,
    oldest_first: bool = False,
) -> list[JobEntry]:
    """A page of ``queue``'s jobs in ``state`` (waiting: the base list), newest first by default.

    Delayed jobs are ordered by due time (soonest first, or latest first with ``oldest_first=False``).
    """
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"offset must be >= 0 and limit 1..{MAX_PAGE}, got {offset} and {limit}")
    space = keyspace or KeySpace()
    validate_queue_name(queue)
    if state is JobState.DELAYED:
        start, stop = offset, offset + limit - 1
        rows = cast(
            "list[tuple[bytes, float]]",
            client.zrange(space.delayed(queue), start, stop, desc=not oldest_first, withscores=True),
        )
        return [JobEntry.read(queue, state, raw, int(score)) for raw, score in rows]
    key = space.failed(queue) if state is JobState.FAILED else space.queue(queue)
    # Newest entries are at the left (LPUSH); oldest first reads from the right end.
    if oldest_first:
        raws = cast("list[bytes]", client.lrange(key, -(offset + limit), -(offset + 1)))[::-1]
    else:
        raws = cast("list[bytes]", client.lrange(key, offset, offset + limit - 1))
    return [JobEntry.read(queue, state, raw) for raw in raws]


def get_job(client: redis.Redis, queue: str, job_id: str, *, keyspace: KeySpace | None = None) -> JobEntry:
    """The job ``job_id`` of ``queue``, in whichever state it is.

    Raises:
        NotFoundError: no such queue, or no job with that id in it.
    """
    space = keyspace or KeySpace()
    _check_queue(client, space, queue)
    matcher = IdMatcher({job_id}, retry=False)
    for state in (JobState.FAILED, JobState.DELAYED, JobState.WAITING):
        for source, kind in _sources(space, queue, state):
            raw = first_match(client, source, kind, matcher)
            if raw is not None:
                due = client.zscore(source, raw) if kind == "zset" else None
                return JobEntry.read(queue, state, raw, None if due is None else int(due))
    raise NotFoundError("job", job_id, hint=f"it is not waiting, delayed or failed in queue {queue!r}")


def _single(
    client: redis.Redis,
    queue: str,
    job_id: str,
    action: BulkAction,
    states: tuple[JobState, ...],
    *,
    keyspace: KeySpace | None,
    actor: str,
    events: EventEmitter | None,
) -> JobState:
    for state in states:
        result = bulk(
            client, queue, state, action, keyspace=keyspace, ids=[job_id], actor=actor, events=events, limit=1
        )
        if result.moved:
            return state
    where = " or ".join(state.value for state in states)
    raise NotFoundError("job", job_id, hint=f"no {where} job with that id in queue {queue!r}")


def retry_job(
    client: redis.Redis, queue: str, job_id: str, *, actor: str, keyspace: KeySpace | None = None,
    events: EventEmitter | None = None,
) -> JobState:  # fmt: skip
    """Move a failed (else delayed) job to the waiting list with attempts reset; returns where it was."""
    states = (JobState.FAILED, JobState.DELAYED)
    return _single(client, queue, job_id, BulkAction.RETRY, states, keyspace=keyspace, actor=actor, events=events)


def delete_job(
    client: redis.Redis, queue: str, job_id: str, *, actor: str, keyspace: KeySpace | None = None,
    events: EventEmitter | None = None,
) -> JobState:  # fmt: skip
    """Delete a job from whichever state holds it (one copy, if byte-identical copies exist); returns that state."""
    states = (JobState.FAILED, JobState.DELAYED, JobState.WAITING)
    return _single(client, queue, job_id, BulkAction.DELETE, states, keyspace=keyspace, actor=actor, events=events)


def promote_job(
    client: redis.Redis, queue: str, job_id: str, *, actor: str, keyspace: KeySpace | None = None,
    events: EventEmitter | None = None,
) -> JobState:  # fmt: skip
    """Move a delayed job to the waiting list now, unchanged."""
    states = (JobState.DELAYED,)
    return _single(client, queue, job_id, BulkAction.PROMOTE, states, keyspace=keyspace, actor=actor, events=events)


def _record(events: EventEmitter | None, queue: str, actor: str, action: OperatorAction, count: int | None) -> None:
    if events is not None:
        events.emit(job_event(EventType.OPERATOR, queue, actor=actor, action=action, count=count))


def pause(
    client: redis.Redis, queue: str, *, actor: str, keyspace: KeySpace | None = None, events: EventEmitter | None = None
) -> None:
    """Pause every lane of ``queue``: workers fetch nothing from it, not even due delayed jobs."""
    space = keyspace or KeySpace()
    client.set(space.paused(queue), "1")
    _record(events, queue, actor, OperatorAction.PAUSE, None)


def resume(
    client: redis.Redis, queue: str, *, actor: str, keyspace: KeySpace | None = None, events: EventEmitter | None = None
) -> None:
    """Resume a paused queue."""
    space = keyspace or KeySpace()
    client.delete(space.paused(queue))
    _record(events, queue, actor, OperatorAction.RESUME, None)


def clear_failed(
    client: redis.Redis, queue: str, *, actor: str, keyspace: KeySpace | None = None, events: EventEmitter | None = None
) -> int:
    """Delete every dead-lettered job of ``queue``; returns how many there were."""
    space = keyspace or KeySpace()
    pipe = client.pipeline(transaction=True)
    pipe.llen(space.failed(queue))
    pipe.delete(space.failed(queue))
    count = int(pipe.execute()[0])
    _record(events, queue, actor, OperatorAction.CLEAR_FAILED, count)
    return count


def purge(
    client: redis.Redis,
    queue: str,
    *,
    confirm: str,
    actor: str,
    keyspace: KeySpace | None = None,
    events: EventEmitter | None = None,
) -> int:
    """Delete every key of ``queue`` (lanes, delayed, failed, flags, processing lists); returns the keys deleted.

    ``confirm`` must repeat the queue name, so a purge is never one typo away.
    """
    if confirm != queue:
        raise ConfigError(f"purging {queue!r} deletes all its jobs; pass confirm={queue!r} to go ahead")
    space = keyspace or KeySpace()
    validate_queue_name(queue)
    keys = [space.queue(queue), *client.scan_iter(match=space.queue_keys_pattern(queue), count=1000)]
    deleted = int(client.delete(*keys))
    client.srem(space.queue_index(), queue)
    _record(events, queue, actor, OperatorAction.PURGE, deleted)
    return deleted
