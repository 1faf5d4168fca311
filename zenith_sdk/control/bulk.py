"""Retry, promote or delete many jobs at once: by id, or every job matching a filter, with a dry run.

Each step is one call of a Lua script over a bounded chunk of one state of one queue, atomic,
so Redis is never blocked for long and a job is either moved or not: two overlapping bulk
retries of the same jobs never duplicate one, and a worker running meanwhile loses nothing.
A filter is matched inside Redis (only matches cross the network); jobs chosen by id are
picked from pages read here, so Redis spends no time on the entries around them.

Retried and promoted jobs go to the lane their ``priority`` names (else the base list). FIFO
groups keep their rule, one fetchable or running job per group: a retried dead letter waits
behind its group when the group is held, and deleting a group's fetchable job lets the next go.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import redis

from zenith_protocol import EventType, KeySpace, OperatorAction
from zenith_sdk.control._entries import JobEntry, JobState, Source
from zenith_sdk.control._job_events import EVENT_OF_MODE, JobEvents
from zenith_sdk.control._matching import JobFilter, match_chunk
from zenith_sdk.control._pick import Exactly, GroupKeys, IdMatcher, Match, Matcher, PickWalk, fallback_lane, matches_of
from zenith_sdk.control._sources import state_sources
from zenith_sdk.control.queues import require_queue
from zenith_sdk.events import EventEmitter, job_event
from zenith_sdk.scripts import BULK, Scripts, scripts_for

__all__ = ["BulkAction", "BulkResult", "JobEntry", "JobFilter", "JobState", "bulk"]


class BulkAction(str, Enum):
    """What a bulk operation does to the jobs it matches."""

    RETRY = "retry"
    DELETE = "delete"
    PROMOTE = "promote"


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


def _group_action(action: BulkAction, state: JobState) -> str:
    """What moving a job of a FIFO group does to its group (see :class:`GroupKeys`)."""
    if action is BulkAction.RETRY and state is JobState.FAILED:
        return "admit"  # a dead letter no longer holds its group: it queues up behind it
    if action is BulkAction.DELETE and state in (JobState.WAITING, JobState.DELAYED):
        return "release"  # it was the group's fetchable job (a delayed one is a retry)
    return ""  # retried or promoted delayed jobs keep holding their group; others hold none


def _check_action(action: BulkAction, state: JobState) -> None:
    if state is JobState.ACTIVE:
        raise ValueError("active jobs are running on a worker; they can be listed, not moved")
    if action is BulkAction.RETRY and state in (JobState.WAITING, JobState.GROUPED):
        raise ValueError(f"{state.value} jobs cannot be retried; retry failed or delayed jobs")
    if action is BulkAction.PROMOTE and state is not JobState.DELAYED:
        raise ValueError("only delayed jobs can be promoted")


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
    """Retry, promote or delete the jobs of ``queue`` in ``state`` that match ``job_filter`` (and ``ids``, if given).

    A retry moves failed or delayed jobs to the lane their ``priority`` names (else the base list)
    with attempts reset to 0 and error/failedAt removed, as the existing system does; a retried
    dead letter of a FIFO group waits behind its group when the group is held. A promotion moves
    delayed jobs unchanged. A delete works on waiting, delayed, failed and grouped jobs; deleting
    a group's fetchable job lets the next job of the group go. ``dry_run`` changes nothing and
    returns the exact count and a sample: it only reads (a Redis user that may not run scripts
    gets the same answer). With ``events``, each job moved gets an event of its own (``retried``,
    ``deleted`` or ``promoted``, with ``actor``), written by the script call that moves it, and the
    operation one ``operator`` event with the count. ``progress`` is called with the number of entries looked
    at. ``limit`` caps how many jobs move (a single-job operation moves one of byte-identical
    copies). ``chunk`` bounds each script call: entries looked at, for a filter; jobs moved, for ``ids``.

    Raises:
        NotFoundError: the queue does not exist.
        ValueError: an action the state does not allow (active jobs are never moved, waiting and
            grouped jobs are not retried, only delayed ones promoted), or a chunk or sample below 1.
    """
    _check_action(action, state)
    if chunk < 1 or sample < 0:
        raise ValueError(f"chunk must be at least 1 and sample at least 0, got {chunk} and {sample}")
    space = keyspace or KeySpace()
    require_queue(client, queue, keyspace=space)
    result = BulkResult(action, queue, state, dry_run)
    settings = _Settings(
        client=client,
        scripts=scripts_for(client),
        lanes=space.lanes_in_poll_order(queue),
        groups=GroupKeys(
            _group_action(action, state), space.group_active(queue), lambda group: space.group_pending(queue, group)
        ),
        mode=action.value,
        dry_run=dry_run,
        tombstone=f"zenith:tombstone:{uuid.uuid4().hex}",
        chunk=chunk,
        sample=sample,
        progress=progress,
        limit=limit,
        events=JobEvents(events, EVENT_OF_MODE[action.value], queue, actor, not space.cluster_safe),
    )
    sources = state_sources(client, space, queue, state)
    if ids is not None:
        _by_ids(settings, sources, set(ids), job_filter, result)
    elif dry_run:
        _count(settings, sources, job_filter or JobFilter(), result)
    else:
        _by_filter(settings, sources, (job_filter or JobFilter()).to_wire(), result)
    if events is not None and not dry_run and result.moved:
        action_name = OperatorAction(action.value)
        events.emit(job_event(EventType.OPERATOR, queue, actor=actor, action=action_name, count=result.moved))
    return result


@dataclass(frozen=True)
class _Settings:
    """One bulk operation's settings, whichever way its jobs are chosen."""

    client: redis.Redis
    scripts: Scripts
    lanes: tuple[str, ...]
    groups: GroupKeys
    mode: str
    dry_run: bool
    tombstone: str
    chunk: int
    sample: int
    progress: Callable[[int], None] | None
    limit: int | None
    events: JobEvents

    @property
    def retries(self) -> bool:
        return self.mode == BulkAction.RETRY.value

    def seen(self, result: BulkResult, looked_at: int, matched: int, sample: list[bytes]) -> None:
        """Count what one step looked at and matched, keep the sample (of its matches), report progress."""
        result.looked_at += looked_at
        result.matched += matched
        room = self.sample - len(result.sample)
        result.sample.extend(JobEntry.read(result.queue, result.state, raw) for raw in sample[: max(0, room)])
        if self.progress is not None:
            self.progress(result.looked_at)

    def pick_walk(self, result: BulkResult, filter_wire: str, limit: int | None) -> PickWalk:
        """A walk that moves jobs picked here (by id, or left by the filter walk) with the pick script."""
        return PickWalk(
            client=self.client,
            scripts=self.scripts,
            lanes=self.lanes,
            groups=self.groups,
            mode=self.mode,
            dry_run=self.dry_run,
            tombstone=self.tombstone,
            filter_wire=filter_wire,
            chunk=self.chunk,
            limit=limit,
            on_page=lambda looked_at, matches: self.seen(result, looked_at, len(matches), matches),
            events=self.events,
        )


class _Filtered:
    """A matcher that keeps the picks of another that also match a filter (a dry run matches here)."""

    def __init__(self, matcher: Matcher, job_filter: JobFilter) -> None:
        self.matcher = matcher
        self.job_filter = job_filter

    def __call__(self, page: Sequence[bytes], offset: int) -> list[Match]:
        return [match for match in self.matcher(page, offset) if self.job_filter.matches(match.raw)]


def _by_ids(
    settings: _Settings, sources: list[Source], ids: set[str], job_filter: JobFilter | None, result: BulkResult
) -> None:
    if not ids:
        return
    moves = not settings.dry_run
    matcher: Matcher = IdMatcher(ids, retry=moves and settings.retries, events=moves and settings.events.on)
    filter_wire = job_filter.to_wire() if job_filter else ""
    if settings.dry_run and job_filter is not None:
        matcher, filter_wire = _Filtered(matcher, job_filter), ""
    walk = settings.pick_walk(result, filter_wire, settings.limit)
    for source in sources:
        if walk.limit_reached():
            break
        walk.run(source, matcher)
    result.moved = walk.moved
    # Matches that could not be found again, not even in a later pass, had left the state meanwhile.
    result.matched -= walk.lost


def _by_filter(settings: _Settings, sources: list[Source], filter_wire: str, result: BulkResult) -> None:
    """Walk every source with the bulk script, then move the grouped matches it left in place.

    Those are moved last, once every source was walked: a job of a group released by deleting the
    group's fetchable job then lands where the walk has been, and is not taken for a match.
    """
    left_over = [(source, _walk(settings, source, filter_wire, result)) for source in sources]
    for source, grouped in left_over:
        if grouped:
            limit = None if settings.limit is None else settings.limit - result.moved
            walk = settings.pick_walk(result, "", limit)
            matches = matches_of(grouped, retry=settings.retries, events=settings.events.on)
            walk.run(source, Exactly(matches), counted=False)
            result.moved += walk.moved


def _walk(settings: _Settings, source: Source, filter_wire: str, result: BulkResult) -> list[bytes]:
    """Walk ``source`` from its oldest entry, one atomic script call per chunk; returns the grouped
    matches the script left in place (it cannot name their groups' keys)."""
    offset = 0
    grouped: list[bytes] = []
    keys = [source.key, *settings.lanes, *settings.events.keys()]
    while True:
        left = 0 if settings.limit is None else settings.limit - result.moved
        if settings.limit is not None and left <= 0:
            return grouped
        sample = max(0, settings.sample - len(result.sample))
        args: list[Any] = [settings.mode, source.kind, offset, settings.chunk, filter_wire, sample]
        args += [settings.tombstone, left, settings.groups.action, fallback_lane(source), *settings.events.args()]
        reply = settings.scripts.call(BULK, keys, args)
        looked_at, matched, moved, deferred, returned = (int(n) for n in reply[:5])
        grouped += reply[5 : 5 + deferred]
        settings.events.append(reply[5 + deferred : 5 + deferred + returned])
        result.moved += moved
        settings.seen(result, looked_at, matched, reply[5 + deferred + returned :])
        if looked_at < settings.chunk:
            return grouped
        offset += looked_at - moved


def _count(settings: _Settings, sources: list[Source], job_filter: JobFilter, result: BulkResult) -> None:
    """A dry run by filter: walk every source with the read-only match script (or plain reads)."""
    for source in sources:
        offset = 0
        while True:
            sample = max(0, settings.sample - len(result.sample))
            found = match_chunk(settings.client, source, offset, settings.chunk, job_filter, sample)
            settings.seen(result, found.looked_at, found.matched, found.sample)
            if found.looked_at < settings.chunk:
                break
            offset += found.looked_at
