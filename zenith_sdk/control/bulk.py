"""Retry or delete many jobs at once: by id, or every job matching a filter, with a dry run.

Each step is one call of a Lua script over a bounded chunk of one state of one queue, atomic,
so Redis is never blocked for long and a job is either moved or not: two overlapping bulk
retries of the same jobs never duplicate one, and a worker running meanwhile loses nothing.
A filter is matched inside Redis (only matches cross the network); jobs chosen by id are
picked from pages read here, so Redis spends no time on the entries around them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, model_validator

from zenith_protocol import (
    EventType,
    JobPayload,
    KeySpace,
    NotFoundError,
    OperatorAction,
    ProtocolError,
    decode_job,
    validate_queue_name,
)
from zenith_protocol._json import dumps
from zenith_sdk.control._pick import IdMatcher, PickWalk
from zenith_sdk.events import EventEmitter, job_event
from zenith_sdk.scripts import Scripts

__all__ = ["BulkAction", "BulkResult", "JobEntry", "JobFilter", "JobState", "bulk"]


class JobState(str, Enum):
    """Where a job sits in a queue."""

    WAITING = "waiting"
    DELAYED = "delayed"
    FAILED = "failed"


class BulkAction(str, Enum):
    """What a bulk operation does to the jobs it matches."""

    RETRY = "retry"
    DELETE = "delete"
    PROMOTE = "promote"


class JobFilter(BaseModel):
    """Which jobs match: every given condition must hold (none given: every job).

    Args:
        name: the job name, exactly.
        error: text the job's error contains.
        text: text the raw payload contains.
        field / value: a property equal to a value (``email:user@example.com``).
        from_ms / to_ms: failedAt (else createdAt) in ``[from_ms, to_ms)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    error: str | None = None
    text: str | None = None
    field: str | None = None
    value: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None

    @model_validator(mode="after")
    def _field_needs_value(self) -> JobFilter:
        if (self.field is None) != (self.value is None):
            raise ValueError("a property filter needs both field and value, as in 'email:user@example.com'")
        return self

    @classmethod
    def from_query(cls, query: str) -> JobFilter:
        """``field:value`` filters on a property; any other text is looked for in the payload."""
        name, sep, value = query.partition(":")
        if sep and name and value and " " not in name:
            return cls(field=name, value=value)
        return cls(text=query)

    def to_wire(self) -> str:
        """The filter as the bulk script reads it."""
        wire: dict[str, str | int | None] = {"name": self.name, "error": self.error, "text": self.text}
        wire.update({"field": self.field, "value": self.value, "from": self.from_ms, "to": self.to_ms})
        return dumps({key: value for key, value in wire.items() if value is not None})


@dataclass(frozen=True)
class JobEntry:
    """One entry of a queue: its exact bytes and, if they decode, the job; else why not."""

    queue: str
    state: JobState
    raw: bytes
    job: JobPayload | None
    problem: ProtocolError | None = None
    due_ms: int | None = None

    @classmethod
    def read(cls, queue: str, state: JobState, raw: bytes | str, due_ms: int | None = None) -> JobEntry:
        """Decode ``raw``; an entry that does not decode is kept with its error, never raised.

        ``raw`` may come as text from a client that decodes replies; it is kept as UTF-8 bytes.
        """
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            return cls(queue, state, raw, decode_job(raw), due_ms=due_ms)
        except ProtocolError as exc:
            return cls(queue, state, raw, None, exc, due_ms)


@dataclass
class BulkResult:
    """What one bulk operation did (or, for a dry run, would do)."""

    action: BulkAction
    queue: str
    state: JobState
    dry_run: bool
    matched: int = 0
    moved: int = 0
    looked_at: int = 0
    sample: list[JobEntry] = field(default_factory=list)


def _sources(space: KeySpace, queue: str, state: JobState) -> list[tuple[str, str]]:
    if state is JobState.WAITING:
        return [(key, "list") for key in space.lanes_in_poll_order(queue)]
    if state is JobState.DELAYED:
        return [(space.delayed(queue), "zset")]
    return [(space.failed(queue), "list")]


def _check_queue(client: redis.Redis, space: KeySpace, queue: str) -> None:
    validate_queue_name(queue)
    pipe = client.pipeline(transaction=False)
    pipe.sismember(space.queue_index(), queue)
    pipe.exists(*space.lanes_in_poll_order(queue), space.delayed(queue), space.failed(queue))
    known, keys = pipe.execute()
    if not known and not keys:
        raise NotFoundError("queue", queue, hint="`zenith queues` lists the queues that exist")


def bulk(
    client: redis.Redis,
    queue: str,
    state: JobState,
    action: BulkAction,
    *,
    keyspace: KeySpace | None = None,
    job_filter: JobFilter | None = None,
    ids: Iterable[str] | None = None,
    dry_run: bool = False,
    chunk: int = 1000,
    sample: int = 10,
    actor: str,
    events: EventEmitter | None = None,
    progress: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> BulkResult:
    """Retry or delete the jobs of ``queue`` in ``state`` that match ``job_filter`` (and ``ids``, if given).

    A retry moves failed or delayed jobs to the waiting list with attempts reset to 0 and
    error/failedAt removed, as the existing system does. ``dry_run`` changes nothing and returns
    the exact count and a sample. ``progress`` is called with the number of entries looked at.
    ``limit`` caps how many jobs move (a single-job operation moves one of byte-identical copies).
    ``chunk`` bounds each script call: entries looked at, for a filter; jobs moved, for ``ids``.

    Raises:
        NotFoundError: the queue does not exist.
        ValueError: a retry of waiting jobs, or a chunk or sample size below 1.
    """
    if action is BulkAction.RETRY and state is JobState.WAITING:
        raise ValueError("waiting jobs cannot be retried; retry failed or delayed jobs")
    if action is BulkAction.PROMOTE and state is not JobState.DELAYED:
        raise ValueError("only delayed jobs can be promoted")
    if chunk < 1 or sample < 0:
        raise ValueError(f"chunk must be at least 1 and sample at least 0, got {chunk} and {sample}")
    space = keyspace or KeySpace()
    _check_queue(client, space, queue)
    result = BulkResult(action, queue, state, dry_run)
    settings = _Settings(
        client=client,
        scripts=Scripts(client),
        target=space.queue(queue),
        mode="count" if dry_run else action.value,
        tombstone=f"zenith:tombstone:{uuid.uuid4().hex}",
        chunk=chunk,
        sample=sample,
        progress=progress,
        limit=limit,
    )
    sources = _sources(space, queue, state)
    if ids is not None:
        _by_ids(settings, sources, set(ids), job_filter.to_wire() if job_filter else "", result)
    else:
        walk = _Walk(settings, (job_filter or JobFilter()).to_wire())
        for source, kind in sources:
            walk.run(source, kind, result)
    if events is not None and not dry_run and result.moved:
        action_name = OperatorAction(action.value)
        events.emit(job_event(EventType.OPERATOR, queue, actor=actor, action=action_name, count=result.moved))
    return result


@dataclass(frozen=True)
class _Settings:
    """One bulk operation's settings, whichever way its jobs are chosen."""

    client: redis.Redis
    scripts: Scripts
    target: str
    mode: str
    tombstone: str
    chunk: int
    sample: int
    progress: Callable[[int], None] | None
    limit: int | None

    def seen(self, result: BulkResult, looked_at: int, matched: int, sample: list[bytes]) -> None:
        """Count what one step looked at and matched, keep the sample (of its matches), report progress."""
        result.looked_at += looked_at
        result.matched += matched
        room = self.sample - len(result.sample)
        result.sample.extend(JobEntry.read(result.queue, result.state, raw) for raw in sample[: max(0, room)])
        if self.progress is not None:
            self.progress(result.looked_at)


def _by_ids(
    settings: _Settings, sources: list[tuple[str, str]], ids: set[str], filter_wire: str, result: BulkResult
) -> None:
    if not ids:
        return
    walk = PickWalk(
        client=settings.client,
        scripts=settings.scripts,
        target=settings.target,
        mode=settings.mode,
        tombstone=settings.tombstone,
        filter_wire=filter_wire,
        chunk=settings.chunk,
        limit=settings.limit,
        on_page=lambda looked_at, matches: settings.seen(result, looked_at, len(matches), matches),
    )
    matcher = IdMatcher(ids, retry=settings.mode == BulkAction.RETRY.value)
    for source, kind in sources:
        if walk.limit_reached():
            break
        walk.run(source, kind, matcher)
    result.moved = walk.moved
    # Matches that could not be found again, not even in a later pass, had left the state meanwhile.
    result.matched -= walk.lost


@dataclass(frozen=True)
class _Walk:
    """A bulk operation by filter, applied chunk by chunk to each source key."""

    settings: _Settings
    filter_wire: str

    def run(self, source: str, kind: str, result: BulkResult) -> None:
        """Walk ``source`` from its oldest entry, one atomic script call per chunk."""
        settings = self.settings
        offset = 0
        while True:
            left = 0 if settings.limit is None else settings.limit - result.moved
            if settings.limit is not None and left <= 0:
                return
            sample = max(0, settings.sample - len(result.sample))
            args: list[Any] = [settings.mode, kind, offset, settings.chunk, self.filter_wire, sample]
            args += [settings.tombstone, left]
            reply = settings.scripts.bulk(keys=[source, settings.target], args=args, client=settings.client)
            looked_at, matched, moved = (int(n) for n in reply[:3])
            result.moved += moved
            settings.seen(result, looked_at, matched, reply[3:])
            if looked_at < settings.chunk:
                return
            offset += looked_at - moved
