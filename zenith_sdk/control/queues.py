"""Queue discovery and counts: one SCAN pass over the queue prefix, then every count in one pipeline.

Discovery never stops early (the old console gave up after 1,000 SCAN calls and silently
dropped queues), never takes a structural key for a queue, and counts what the old console
missed: every priority lane and this package's processing lists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from zenith_protocol import (
    ConfigError,
    KeyKind,
    KeySpace,
    ProtocolError,
    QueueSnapshot,
    decode_paused_flag,
    validate_queue_name,
)
from zenith_protocol.keys import PRIORITY_LANES

__all__ = ["QueueKeys", "discover_queues", "queue_snapshots"]

logger = logging.getLogger(__name__)

SCAN_COUNT = 1000


@dataclass
class QueueKeys:
    """What discovery found of one queue: its name and its workers' processing lists."""

    name: str
    processing: set[str] = field(default_factory=set)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _valid(name: str) -> bool:
    try:
        validate_queue_name(name)
    except ConfigError:
        logger.debug("queue=%r is not a usable queue name; skipped", name)
        return False
    return True


def discover_queues(client: redis.Redis, space: KeySpace | None = None) -> dict[str, QueueKeys]:
    """Every queue under the queue prefix, found in one complete SCAN pass, plus the queue index."""
    space = space or KeySpace()
    found: dict[str, QueueKeys] = {}
    for raw_key in client.scan_iter(match=f"{space.queue_prefix}*", count=SCAN_COUNT):
        key = _text(raw_key)
        parsed = space.parse(key)
        if parsed is None or parsed.queue is None or not _valid(parsed.queue):
            continue
        queue = found.setdefault(parsed.queue, QueueKeys(parsed.queue))
        if parsed.kind is KeyKind.PROCESSING:
            queue.processing.add(key)
    for raw_name in client.smembers(space.queue_index()):
        name = _text(raw_name)
        if _valid(name):
            found.setdefault(name, QueueKeys(name))
    return dict(sorted(found.items()))


def queue_snapshots(
    client: redis.Redis, space: KeySpace | None = None, queues: Iterable[QueueKeys] | None = None
) -> list[QueueSnapshot]:
    """Counts of every queue (discovered now unless given), read in one pipelined round trip."""
    space = space or KeySpace()
    listed = list(queues) if queues is not None else list(discover_queues(client, space).values())
    pipe = client.pipeline(transaction=False)
    for queue in listed:
        for lane in PRIORITY_LANES:
            pipe.llen(space.lane(queue.name, lane))
        pipe.llen(space.queue(queue.name))
        pipe.zcard(space.delayed(queue.name))
        pipe.llen(space.failed(queue.name))
        pipe.scard(space.active_set(queue.name))
        pipe.get(space.paused(queue.name))
        for key in sorted(queue.processing):
            pipe.llen(key)
    results = iter(pipe.execute() if listed else [])
    now_ms = int(time.time() * 1000)
    snapshots = []
    for queue in listed:
        lanes = {lane: int(next(results)) for lane in PRIORITY_LANES}
        base, delayed, failed, active_set = (int(next(results)) for _ in range(4))
        paused_raw = next(results)
        in_flight = sum(int(next(results)) for _ in queue.processing)
        snapshots.append(
            QueueSnapshot(
                name=queue.name,
                waiting=base + sum(lanes.values()),
                delayed=delayed,
                failed=failed,
                active=active_set + in_flight,
                paused=_paused(paused_raw, queue.name),
                lanes={lane: count for lane, count in lanes.items() if count},
                timestamp=now_ms,
            )
        )
    return snapshots


def _paused(raw: bytes | None, name: str) -> bool:
    try:
        return decode_paused_flag(raw)
    except ProtocolError:
        # Only "1" pauses the old consumer; anything else leaves the queue running.
        logger.warning("queue=%s has an unreadable paused flag %r; shown as running", name, raw)
        return False
