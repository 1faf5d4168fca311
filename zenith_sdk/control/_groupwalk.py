"""Find where the jobs of FIFO groups are: which queue a group belongs to, which groups have a job left.

In the wire layout the group keys are global (``queue:active``, ``queue:pending:<g>``), so a
pending list does not say which queue it belongs to: the queue of the group's fetchable or
running job does (that is where the next pending job goes when it is released). A read-only
script returns the group ids of a chunk of entries, so only ids cross the network.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from zenith_protocol import KeyKind, KeySpace
from zenith_sdk._wire import storable, text_of
from zenith_sdk.control._entries import JobState, Source
from zenith_sdk.control._pick import decode_object
from zenith_sdk.scripts import GROUPS, Script, ScriptArg, scripts_for

__all__ = ["GroupRef", "QueueSource", "admitted_sources", "attribute_groups", "walk_groups"]

CHUNK = 1000
"""Entries one call of the groups script reads."""
CALLS_PER_ROUND_TRIP = 500

GroupRef = tuple[str | None, str]
"""A FIFO group: the queue whose keys hold it (cluster-safe layout) or None (wire layout: global), and its id."""

_ADMITTED_ORDER = {JobState.ACTIVE: 0, JobState.DELAYED: 1, JobState.WAITING: 2}


@dataclass(frozen=True)
class QueueSource:
    """A source key and the queue it belongs to."""

    queue: str
    source: Source


def _source_of(space: KeySpace, key: str, kind: KeyKind) -> Source | None:
    parsed = space.parse(key)
    part = parsed.part if parsed is not None else None
    if kind in (KeyKind.QUEUE, KeyKind.LANE):
        return Source(key, "list", JobState.WAITING, part)
    if kind is KeyKind.DELAYED:
        return Source(key, "zset", JobState.DELAYED, part)
    if kind is KeyKind.PROCESSING:
        return Source(key, "list", JobState.ACTIVE, worker=part)
    if kind is KeyKind.FAILED:
        return Source(key, "list", JobState.FAILED)
    return None


def admitted_sources(
    space: KeySpace, queues: Mapping[str, Mapping[str, KeyKind]], *, failed: bool = False
) -> list[QueueSource]:
    """The keys that hold a group's one fetchable or running job (processing lists first, then delayed
    sets, then lanes, where it is likeliest found soonest), with the dead-letter lists last if ``failed``."""
    found = []
    for queue, keys in queues.items():
        for key, kind in keys.items():
            source = _source_of(space, key, kind)
            if source is not None and (source.state is not JobState.FAILED or failed):
                found.append(QueueSource(queue, source))
    return sorted(found, key=lambda item: _ADMITTED_ORDER.get(item.source.state, 3))


def walk_groups(
    client: redis.Redis,
    space: KeySpace,
    sources: Sequence[QueueSource],
    wanted: Collection[GroupRef] | None = None,
) -> dict[GroupRef, list[tuple[str, JobState]]]:
    """The groups of the jobs in ``sources``, each with where its jobs are (queue and state).

    Sources are read in order, a chunk per script call, many calls per round trip; with
    ``wanted``, the walk stops once each of those groups has been seen.
    """
    found: dict[GroupRef, list[tuple[str, JobState]]] = {}
    todo = [(item, 0) for item in sources]
    missing = set(wanted) if wanted is not None else None
    while todo and (missing is None or missing):
        batch, todo = todo[:CALLS_PER_ROUND_TRIP], todo[CALLS_PER_ROUND_TRIP:]
        replies = _calls(client, batch)
        for (item, offset), reply in zip(batch, replies):
            scope = item.queue if space.cluster_safe else None
            for raw_id in reply[1:]:
                ref = (scope, text_of(raw_id))
                found.setdefault(ref, []).append((item.queue, item.source.state))
                if missing is not None:
                    missing.discard(ref)
            if int(reply[0]) == CHUNK:
                todo.append((item, offset + CHUNK))
    return found


def _calls(client: redis.Redis, batch: list[tuple[QueueSource, int]]) -> list[list[Any]]:
    calls: list[tuple[Script, list[str], list[ScriptArg]]] = [
        (GROUPS, [item.source.key], [item.source.kind, offset, CHUNK]) for item, offset in batch
    ]
    replies = scripts_for(client).read_only(calls)
    if replies is None:
        # A user allowed to read but not to run scripts: the same answers from plain reads.
        return _read_here(client, batch)
    return replies


def _read_here(client: redis.Redis, batch: list[tuple[QueueSource, int]]) -> list[list[Any]]:
    """What the groups script answers, from pipelined LRANGE/ZRANGE reads matched here."""
    pipe = client.pipeline(transaction=False)
    for item, offset in batch:
        if item.source.kind == "list":
            pipe.lrange(item.source.key, -(offset + CHUNK), -(offset + 1))
        else:
            pipe.zrange(item.source.key, offset, offset + CHUNK - 1)
    replies: list[list[Any]] = []
    for entries in pipe.execute():
        groups = []
        for raw in entries:
            raw = raw if isinstance(raw, bytes) else str(raw).encode()
            job = decode_object(raw) if b'"groupId"' in raw else None
            group = job.get("groupId") if job is not None else None
            if isinstance(group, str) and group:
                groups.append(storable(group))
        replies.append([len(entries), *groups])
    return replies


def attribute_groups(
    client: redis.Redis,
    space: KeySpace,
    queues: Mapping[str, Mapping[str, KeyKind]],
    groups: Iterable[GroupRef],
) -> dict[GroupRef, str]:
    """The queue each group belongs to: where its fetchable or running job is.

    In the cluster-safe layout that is the queue holding the group's keys. A group with no such
    job anywhere (a stuck group, see :func:`zenith_sdk.control.groups.group_survey`) is left out.
    """
    homes: dict[GroupRef, str] = {}
    unknown: set[GroupRef] = set()
    for ref in groups:
        if ref[0] is not None:
            homes[ref] = ref[0]
        else:
            unknown.add(ref)
    if unknown:
        seen = walk_groups(client, space, admitted_sources(space, queues), unknown)
        for ref in unknown:
            places = seen.get(ref)
            if places:
                homes[ref] = places[0][0]
    return homes
