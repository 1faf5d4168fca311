"""The Redis keys that hold one queue's jobs in one state, including those found only in Redis.

Waiting lanes, delayed sets and the dead-letter list follow from the queue name. Processing
lists are named after workers, and a FIFO group's pending list (global in the wire layout)
belongs to the queue of the group's fetchable or running job: both are found by a SCAN.
"""

from __future__ import annotations

import redis

from zenith_protocol import KeyKind, KeySpace
from zenith_sdk._wire import text_of
from zenith_sdk.control._entries import JobState, Source, static_sources
from zenith_sdk.control._groupwalk import QueueSource, walk_groups

__all__ = ["grouped_sources", "processing_sources", "state_sources"]

SCAN_COUNT = 1000


def _scan(client: redis.Redis, space: KeySpace, pattern: str, kind: KeyKind) -> dict[str, str]:
    """Keys matching ``pattern`` that parse as ``kind``, each with its variable part."""
    found: dict[str, str] = {}
    for raw_key in client.scan_iter(match=pattern, count=SCAN_COUNT):
        key = text_of(raw_key)
        parsed = space.parse(key)
        if parsed is not None and parsed.kind is kind and parsed.part:
            found[key] = parsed.part
    return found


def processing_sources(client: redis.Redis, space: KeySpace, queue: str) -> list[Source]:
    """The processing lists of ``queue``'s workers, by worker id."""
    found = _scan(client, space, space.processing(queue, "*"), KeyKind.PROCESSING)
    return [Source(key, "list", JobState.ACTIVE, worker=worker) for key, worker in sorted(found.items())]


def grouped_sources(client: redis.Redis, space: KeySpace, queue: str) -> list[Source]:
    """The pending lists of the FIFO groups that belong to ``queue``, by group id.

    In the wire layout the pending lists are global: a group belongs to ``queue`` when its
    fetchable or running job is in one of ``queue``'s lanes, delayed sets or processing lists.
    """
    pending = {
        group: key
        for key, group in _scan(client, space, space.group_pending(queue, "*"), KeyKind.GROUP_PENDING).items()
    }
    if not pending:
        return []
    if not space.cluster_safe:
        holders = [*static_sources(space, queue, JobState.WAITING), *static_sources(space, queue, JobState.DELAYED)]
        holders += processing_sources(client, space, queue)
        seen = walk_groups(
            client, space, [QueueSource(queue, source) for source in holders], {(None, g) for g in pending}
        )
        pending = {group: key for group, key in pending.items() if (None, group) in seen}
    return [Source(pending[group], "list", JobState.GROUPED, group=group) for group in sorted(pending)]


def state_sources(client: redis.Redis, space: KeySpace, queue: str, state: JobState) -> list[Source]:
    """Every key that holds ``queue``'s jobs in ``state``, in the order they are walked."""
    if state is JobState.ACTIVE:
        return processing_sources(client, space, queue)
    if state is JobState.GROUPED:
        return grouped_sources(client, space, queue)
    return static_sources(space, queue, state)
