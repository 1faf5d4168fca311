"""Queue discovery and counts: one SCAN pass over the queue prefix, then every count in one round trip.

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
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

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
from zenith_sdk.scripts import Scripts

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


@dataclass
class _Found:
    """Discovered queues and their counted keys, as columns (few objects, so little for the GC to walk).

    ``owners[i]`` is the index, in ``names``, of the queue ``keys[i]`` belongs to.
    """

    names: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    kinds: list[KeyKind] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)

    def add(self, key: str, kind: KeyKind, owner: int) -> None:
        self.keys.append(key)
        self.kinds.append(kind)
        self.owners.append(owner)

    @classmethod
    def of(cls, space: KeySpace, queues: Iterable[QueueKeys]) -> _Found:
        found = cls()
        for owner, queue in enumerate(queues):
            found.names.append(queue.name)
            keys = queue.keys if queue.keys is not None else _all_keys(space, queue.name)
            for key, kind in keys.items():
                found.add(key, kind, owner)
        return found


def _scan(client: redis.Redis, space: KeySpace) -> _Found:
    """One complete SCAN pass over the queue prefix, plus the queue index; names in the order found."""
    found = _Found()
    owners: dict[str, int] = {}
    unusable: set[str] = set()
    parse = space.queue_key_parser()
    for raw_key in client.scan_iter(match=f"{space.queue_prefix}*", count=SCAN_COUNT):
        key = _text(raw_key)
        parsed = parse(key)
        if parsed is None or parsed.queue is None:
            continue
        owner = owners.get(parsed.queue)
        if owner is None:
            # A name is checked once, when its first key turns up.
            if parsed.queue in unusable or not _valid(parsed.queue):
                unusable.add(parsed.queue)
                continue
            owner = owners[parsed.queue] = len(found.names)
            found.names.append(parsed.queue)
        if parsed.kind in _COUNTED and (parsed.kind is not KeyKind.LANE or parsed.part):
            found.add(key, parsed.kind, owner)
    for raw_name in client.smembers(space.queue_index()):
        name = _text(raw_name)
        if name not in owners and _valid(name):
            owners[name] = len(found.names)
            found.names.append(name)
    return found


def discover_queues(client: redis.Redis, space: KeySpace | None = None) -> dict[str, QueueKeys]:
    """Every queue under the queue prefix, found in one complete SCAN pass, plus the queue index."""
    found = _scan(client, space or KeySpace())
    queues = [QueueKeys(name) for name in found.names]
    for key, kind, owner in zip(found.keys, found.kinds, found.owners):
        queues[owner].keys[key] = kind  # type: ignore[index]
    return {queue.name: queue for queue in sorted(queues, key=lambda queue: queue.name)}


def _all_keys(space: KeySpace, name: str) -> dict[str, KeyKind]:
    keys = {space.lane(name, lane): KeyKind.LANE for lane in PRIORITY_LANES}
    keys[space.queue(name)] = KeyKind.QUEUE
    keys[space.delayed(name)] = KeyKind.DELAYED
    keys[space.failed(name)] = KeyKind.FAILED
    keys[space.active_set(name)] = KeyKind.ACTIVE_SET
    keys[space.paused(name)] = KeyKind.PAUSED
    return keys


_COUNT_READS = {
    KeyKind.QUEUE: "LLEN",
    KeyKind.LANE: "LLEN",
    KeyKind.PROCESSING: "LLEN",
    KeyKind.FAILED: "LLEN",
    KeyKind.DELAYED: "ZCARD",
    KeyKind.ACTIVE_SET: "SCARD",
    KeyKind.PAUSED: "GET",
}
"""The read that counts each kind of key (in the count script, or one by one)."""

COUNT_BATCH = 1000
"""Keys counted per script call in the wire layout (each call is short: about 1 µs per key)."""


def queue_snapshots(
    client: redis.Redis, space: KeySpace | None = None, queues: Iterable[QueueKeys] | None = None
) -> list[QueueSnapshot]:
    """Counts of every queue (discovered now unless given), by name, read in one pipelined round trip.

    Only keys that discovery saw are read, so a queue with two keys costs two key reads. The
    reads run in a read-only script, many keys per call (one queue per call in the cluster-safe
    layout, whose queues live in different slots).
    """
    space = space or KeySpace()
    found = _scan(client, space) if queues is None else _Found.of(space, queues)
    totals = _Totals(found.names)
    for key, kind, owner, value in zip(found.keys, found.kinds, found.owners, _count(client, space, found)):
        totals.add(owner, key, kind, value)
    now_ms = int(time.time() * 1000)
    order = sorted(range(len(found.names)), key=found.names.__getitem__)
    return [totals.snapshot(owner, now_ms) for owner in order]


def _count(client: redis.Redis, space: KeySpace, found: _Found) -> list[object]:
    """The count script's value for every key of ``found``, in order; one round trip."""
    if space.cluster_safe:
        # One queue's keys per call: group them (a stable sort keeps each queue's keys in order).
        order = sorted(range(len(found.keys)), key=found.owners.__getitem__)
        batches: list[list[int]] = []
        for index in order:
            if not batches or found.owners[batches[-1][0]] != found.owners[index]:
                batches.append([])
            batches[-1].append(index)
    else:
        batches = [
            list(range(start, min(start + COUNT_BATCH, len(found.keys))))
            for start in range(0, len(found.keys), COUNT_BATCH)
        ]
    if not batches:
        return []
    scripts = Scripts(client)

    def counted() -> list[list[object]]:
        # Bare EVALSHA calls: no SCRIPT EXISTS round trip before them (see Scripts.queue_call).
        pipe = client.pipeline(transaction=False)
        for batch in batches:
            keys = [found.keys[index] for index in batch]
            scripts.queue_call(pipe, scripts.count, keys, [_COUNT_READS[found.kinds[index]] for index in batch])
        replies: list[list[object]] = pipe.execute()
        return replies

    try:
        try:
            replies = counted()
        except NoScriptError:  # the script cache was flushed
            client.script_load(scripts.count.script)
            replies = counted()
    except NoPermissionError:
        # A user allowed to read but not to run scripts (a read-only dashboard, say).
        logger.debug("the count script is not allowed for this user; counting key by key")
        return _count_key_by_key(client, found)
    values: list[object] = [None] * len(found.keys)
    for batch, reply in zip(batches, replies):
        for index, value in zip(batch, reply):
            values[index] = value
    return values


def _count_key_by_key(client: redis.Redis, found: _Found) -> list[object]:
    """The same values as the count script, one pipelined read per key."""
    pipe = client.pipeline(transaction=False)
    for key, kind in zip(found.keys, found.kinds):
        pipe.execute_command(_COUNT_READS[kind], key)  # type: ignore[no-untyped-call]
    return [-1 if isinstance(value, ResponseError) else value for value in pipe.execute(raise_on_error=False)]


class _Totals:
    """Per-queue sums of the counts, as columns indexed by queue (its index in ``names``)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.waiting = [0] * len(names)
        self.delayed = [0] * len(names)
        self.failed = [0] * len(names)
        self.active = [0] * len(names)
        self.paused = [False] * len(names)
        self.lanes: dict[int, dict[str, int]] = {}

    def add(self, owner: int, key: str, kind: KeyKind, value: object) -> None:
        name = self.names[owner]
        if kind is KeyKind.PAUSED:
            self.paused[owner] = _paused(value, name)  # type: ignore[arg-type]
            return
        count = int(value)  # type: ignore[call-overload]
        if count < 0:
            logger.warning("queue=%s key=%s holds an unexpected type; not counted", name, key)
        elif kind is KeyKind.QUEUE:
            self.waiting[owner] += count
        elif kind is KeyKind.LANE:
            self.waiting[owner] += count
            if count:
                self.lanes.setdefault(owner, {})[key.rsplit(":", 1)[1]] = count
        elif kind is KeyKind.DELAYED:
            self.delayed[owner] += count
        elif kind is KeyKind.FAILED:
            self.failed[owner] += count
        else:  # the legacy active set and the processing lists
            self.active[owner] += count

    def snapshot(self, owner: int, now_ms: int) -> QueueSnapshot:
        return QueueSnapshot(
            name=self.names[owner],
            waiting=self.waiting[owner],
            delayed=self.delayed[owner],
            failed=self.failed[owner],
            active=self.active[owner],
            paused=self.paused[owner],
            lanes=self.lanes.get(owner, {}),
            timestamp=now_ms,
        )


def _paused(raw: bytes | int | None, name: str) -> bool:
    if isinstance(raw, int):
        logger.warning("queue=%s has a paused flag that is not a string; shown as running", name)
        return False
    try:
        return decode_paused_flag(raw)
    except ProtocolError:
        # Only "1" pauses the old consumer; anything else leaves the queue running.
        logger.warning("queue=%s has an unreadable paused flag %r; shown as running", name, raw)
        return False
