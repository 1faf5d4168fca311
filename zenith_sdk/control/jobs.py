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
    KeyKind,
    KeySpace,
    NotFoundError,
    OperatorAction,
    validate_queue_name,
)
from zenith_sdk._wire import text_of
from zenith_sdk.control._entries import JobEntry, JobState, Source
from zenith_sdk.control._groupwalk import admitted_sources, walk_groups
from zenith_sdk.control._pick import IdMatcher, first_match
from zenith_sdk.control._sources import state_sources
from zenith_sdk.control.bulk import BulkAction, bulk
from zenith_sdk.control.queues import require_queue
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
_MAX_ELEMENTS = 2**32
"""No Redis list or sorted set holds more elements: a page starting there is empty."""

FIND_ORDER = (JobState.FAILED, JobState.DELAYED, JobState.WAITING, JobState.GROUPED, JobState.ACTIVE)
"""The states a job is looked for in, by id."""


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
    """A page of ``queue``'s jobs in ``state``, newest first by default.

    Waiting jobs of every lane are listed, oldest first in the order workers take them (critical,
    high, base, low); grouped jobs group by group, each group's in its push order; delayed jobs
    of every lane by due time (soonest first, or latest first by default). Each entry names its
    lane (waiting, delayed) or worker (active).
    """
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"offset must be >= 0 and limit 1..{MAX_PAGE}, got {offset} and {limit}")
    space = keyspace or KeySpace()
    validate_queue_name(queue)
    if offset >= _MAX_ELEMENTS:  # Redis refuses indexes beyond 64 bits
        return []
    sources = state_sources(client, space, queue, state)
    if state is JobState.DELAYED:
        return _delayed_page(client, queue, sources, offset, limit, oldest_first)
    return _list_page(client, queue, sources, offset, limit, oldest_first)


def _delayed_page(
    client: redis.Redis, queue: str, sources: list[Source], offset: int, limit: int, oldest_first: bool
) -> list[JobEntry]:
    """One page of several delayed sets merged by due time: the first ``offset + limit`` of each, then merged."""
    pipe = client.pipeline(transaction=False)
    for source in sources:
        pipe.zrange(source.key, 0, offset + limit - 1, desc=not oldest_first, withscores=True)
    rows = [
        (score, order, raw, source)
        for order, (source, found) in enumerate(zip(sources, pipe.execute()))
        for raw, score in found
    ]
    rows.sort(key=lambda row: (row[0], row[1]), reverse=not oldest_first)
    return [
        JobEntry.read(queue, JobState.DELAYED, raw, int(score), source=source)
        for score, _, raw, source in rows[offset : offset + limit]
    ]


def _list_page(
    client: redis.Redis, queue: str, sources: list[Source], offset: int, limit: int, oldest_first: bool
) -> list[JobEntry]:
    """One page of several lists read as one, oldest first in the order ``sources`` are given (else reversed)."""
    pipe = client.pipeline(transaction=False)
    for source in sources:
        pipe.llen(source.key)
    lengths = [int(n) for n in pipe.execute()]
    ordered = list(zip(sources, lengths)) if oldest_first else list(zip(sources, lengths))[::-1]
    pipe = client.pipeline(transaction=False)
    wanted: list[tuple[Source, bool]] = []
    skip, left = offset, limit
    for source, length in ordered:
        if left <= 0:
            break
        if skip >= length:
            skip -= length
            continue
        count = min(left, length - skip)
        # Read from the end the page starts at: the oldest end of a list pushed at its head is its tail.
        from_tail = oldest_first != source.oldest_at_head
        if from_tail:
            pipe.lrange(source.key, -(skip + count), -(skip + 1))
        else:
            pipe.lrange(source.key, skip, skip + count - 1)
        wanted.append((source, from_tail))
        skip, left = 0, left - count
    entries = []
    for (source, from_tail), raws in zip(wanted, pipe.execute()):
        for raw in cast("list[bytes]", raws)[::-1] if from_tail else raws:
            entries.append(JobEntry.read(queue, source.state, raw, source=source))
    return entries


def get_job(client: redis.Redis, queue: str, job_id: str, *, keyspace: KeySpace | None = None) -> JobEntry:
    """The job ``job_id`` of ``queue``, in whichever state it is (failed, delayed, waiting, grouped, active).

    Raises:
        NotFoundError: no such queue, or no job with that id in it.
    """
    space = keyspace or KeySpace()
    require_queue(client, queue, keyspace=space)
    matcher = IdMatcher({job_id}, retry=False)
    for state in FIND_ORDER:
        for source in state_sources(client, space, queue, state):
            raw = first_match(client, source.key, source.kind, matcher)
            if raw is not None:
                due = client.zscore(source.key, raw) if source.kind == "zset" else None
                return JobEntry.read(queue, state, raw, None if due is None else int(due), source=source)
    raise NotFoundError("job", job_id, hint=f"it is not in queue {queue!r} in any state")


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
    """Move a failed (else delayed) job to its lane with attempts reset; returns where it was.

    A dead letter of a FIFO group waits behind its group when the group is held (state grouped).
    """
    states = (JobState.FAILED, JobState.DELAYED)
    return _single(client, queue, job_id, BulkAction.RETRY, states, keyspace=keyspace, actor=actor, events=events)


def delete_job(
    client: redis.Redis, queue: str, job_id: str, *, actor: str, keyspace: KeySpace | None = None,
    events: EventEmitter | None = None,
) -> JobState:  # fmt: skip
    """Delete a job from whichever state holds it (one copy, if byte-identical copies exist); returns that state.

    A running (active) job is not deleted: it is on a worker.
    """
    states = (JobState.FAILED, JobState.DELAYED, JobState.WAITING, JobState.GROUPED)
    return _single(client, queue, job_id, BulkAction.DELETE, states, keyspace=keyspace, actor=actor, events=events)


def promote_job(
    client: redis.Redis, queue: str, job_id: str, *, actor: str, keyspace: KeySpace | None = None,
    events: EventEmitter | None = None,
) -> JobState:  # fmt: skip
    """Move a delayed job to its lane now, unchanged."""
    states = (JobState.DELAYED,)
    return _single(client, queue, job_id, BulkAction.PROMOTE, states, keyspace=keyspace, actor=actor, events=events)


def _record(events: EventEmitter | None, queue: str, actor: str, action: OperatorAction, count: int) -> None:
    if events is not None:
        events.emit(job_event(EventType.OPERATOR, queue, actor=actor, action=action, count=count))


def pause(
    client: redis.Redis, queue: str, *, actor: str, keyspace: KeySpace | None = None, events: EventEmitter | None = None
) -> None:
    """Pause every lane of ``queue``: workers fetch nothing from it, not even due delayed jobs.

    The queue's flag pauses it for this package's workers; each lane's flag is set too, since the
    Node consumer reads only the flag of the lane it polls.
    """
    space = keyspace or KeySpace()
    pipe = client.pipeline(transaction=True)
    for flag in space.paused_in_poll_order(queue):
        pipe.set(flag, "1")
    pipe.execute()
    _record(events, queue, actor, OperatorAction.PAUSE, 0)


def resume(
    client: redis.Redis, queue: str, *, actor: str, keyspace: KeySpace | None = None, events: EventEmitter | None = None
) -> None:
    """Resume a paused queue: every lane's flag is cleared, including a lane paused on its own."""
    space = keyspace or KeySpace()
    client.delete(*space.paused_in_poll_order(queue))
    _record(events, queue, actor, OperatorAction.RESUME, 0)


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
    """Delete every key of ``queue`` (lanes, delayed sets, failed, flags, processing lists); returns the keys deleted.

    The FIFO groups whose jobs were in the queue are freed and the jobs waiting behind them
    deleted too (their pending lists count among the keys). ``confirm`` must repeat the queue
    name, so a purge is never one typo away.
    """
    if confirm != queue:
        raise ConfigError(f"purging {queue!r} deletes all its jobs; pass confirm={queue!r} to go ahead")
    space = keyspace or KeySpace()
    validate_queue_name(queue)
    keys = {space.queue(queue): KeyKind.QUEUE}
    for raw_key in client.scan_iter(match=space.queue_keys_pattern(queue), count=1000):
        key = text_of(raw_key)
        parsed = space.parse(key)
        keys[key] = parsed.kind if parsed is not None else KeyKind.UNKNOWN
    # In the wire layout the group keys are global: free the groups this queue's jobs held.
    held = (
        []
        if space.cluster_safe
        else sorted({ref[1] for ref in walk_groups(client, space, admitted_sources(space, {queue: keys}))})
    )
    pipe = client.pipeline(transaction=True)
    pipe.delete(*keys, *(space.group_pending(queue, group) for group in held))
    if held:
        pipe.srem(space.group_active(queue), *held)
    pipe.srem(space.queue_index(), queue)
    deleted = int(pipe.execute()[0])
    _record(events, queue, actor, OperatorAction.PURGE, deleted)
    return deleted
