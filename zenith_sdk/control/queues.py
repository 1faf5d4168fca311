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
    """What discovery found of one queue: its name and which of its keys exist.

    ``keys`` maps each existing counted key (lanes, delayed, failed, active set, processing
    lists, paused flag) to its kind; ``None`` means "not scanned": count every key there may be.
    """

    name: str
    keys: dict[str, KeyKind] | None = field(default_factory=dict)


_COUNTED = frozenset(
    {
        KeyKind.QUEUE,
        KeyKind.LANE,
        KeyKind.DELAYED,
        KeyKind.FAILED,
        KeyKind.ACTIVE_SET,
        KeyKind.PROCESSING,
        KeyKind.PAUSED,
    }
)


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
        if parsed.kind in _COUNTED and queue.keys is not None and (parsed.kind is not KeyKind.LANE or parsed.part):
            queue.keys[key] = parsed.kind
    for raw_name in client.smembers(space.queue_index()):
        name = _text(raw_name)
        if _valid(name):
            found.setdefault(name, QueueKeys(name))
    return dict(sorted(found.items()))


def _all_keys(space: KeySpace, name: str) -> dict[str, KeyKind]:
    keys = {space.lane(name, lane): KeyKind.LANE for lane in PRIORITY_LANES}
    keys[space.queue(name)] = KeyKind.QUEUE
    keys[space.delayed(name)] = KeyKind.DELAYED
    keys[space.failed(name)] = KeyKind.FAILED
    keys[space.active_set(name)] = KeyKind.ACTIVE_SET
    keys[space.paused(name)] = KeyKind.PAUSED
    return keys


_COMMANDS = {
    KeyKind.QUEUE: "LLEN",
    KeyKind.LANE: "LLEN",
    KeyKind.PROCESSING: "LLEN",
    KeyKind.FAILED: "LLEN",
    KeyKind.DELAYED: "ZCARD",
    KeyKind.ACTIVE_SET: "SCARD",
    KeyKind.PAUSED: "GET",
}


def queue_snapshots(
    client: redis.Redis, space: KeySpace | None = None, queues: Iterable[QueueKeys] | None = None
) -> list[QueueSnapshot]:
    """Counts of every queue (discovered now unless given), read in one pipelined round trip.

    Only keys that discovery saw are read, so a queue with two keys costs two commands.
    """
    space = space or KeySpace()
    listed = list(queues) if queues is not None else list(discover_queues(client, space).values())
    plan = [(queue.name, queue.keys if queue.keys is not None else _all_keys(space, queue.name)) for queue in listed]
    pipe = client.pipeline(transaction=False)
    for _, keys in plan:
        for key, kind in keys.items():
            pipe.execute_command(_COMMANDS[kind], key)  # type: ignore[no-untyped-call]
    results = iter(pipe.execute() if any(keys for _, keys in plan) else [])
    now_ms = int(time.time() * 1000)
    return [_snapshot(name, {key: (kind, next(results)) for key, kind in keys.items()}, now_ms) for name, keys in plan]


def _snapshot(name: str, counted: dict[str, tuple[KeyKind, object]], now_ms: int) -> QueueSnapshot:
    totals: dict[KeyKind, int] = {}
    lanes: dict[str, int] = {}
    paused = False
    for key, (kind, value) in counted.items():
        if kind is KeyKind.PAUSED:
            paused = _paused(value, name)  # type: ignore[arg-type]
            continue
        count = int(value)  # type: ignore[call-overload]
        totals[kind] = totals.get(kind, 0) + count
        if kind is KeyKind.LANE and count:
            lanes[key.rsplit(":", 1)[1]] = count
    return QueueSnapshot(
        name=name,
        waiting=totals.get(KeyKind.QUEUE, 0) + totals.get(KeyKind.LANE, 0),
        delayed=totals.get(KeyKind.DELAYED, 0),
        failed=totals.get(KeyKind.FAILED, 0),
        active=totals.get(KeyKind.ACTIVE_SET, 0) + totals.get(KeyKind.PROCESSING, 0),
        paused=paused,
        lanes=lanes,
        timestamp=now_ms,
    )


def _paused(raw: bytes | None, name: str) -> bool:
    try:
        return decode_paused_flag(raw)
    except ProtocolError:
        # Only "1" pauses the old consumer; anything else leaves the queue running.
        logger.warning("queue=%s has an unreadable paused flag %r; shown as running", name, raw)
        return False
