"""Queue discovery and counts: one SCAN pass over the queue prefix, then every count in one round trip.

Discovery never stops early (the old console gave up after 1,000 SCAN calls and silently
dropped queues), never takes a structural key for a queue, and counts what the old console
missed: every priority lane with its delayed set, this package's processing lists, and the jobs
waiting behind their FIFO group (a group's pending list belongs to the queue of the group's
fetchable or running job).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from redis.exceptions import ResponseError

from zenith_protocol import (
    ConfigError,
    KeyKind,
    KeySpace,
    NotFoundError,
    ProtocolError,
    QueueSnapshot,
    decode_paused_flag,
    validate_queue_name,
)
from zenith_protocol.keys import LANES_IN_POLL_ORDER, PRIORITY_LANES
from zenith_sdk._wire import text_of
from zenith_sdk.control._groupwalk import GroupRef, attribute_groups
from zenith_sdk.scripts import COUNT, scripts_for

__all__ = ["QueueKeys", "discover_queues", "queue_snapshots", "require_queue"]

logger = logging.getLogger(__name__)

SCAN_COUNT = 1000


@dataclass
class QueueKeys:
    """What discovery found of one queue: its name and which of its keys exist.

    ``keys`` maps each existing counted key (lanes and their delayed sets and paused flags,
    failed, active set, processing lists, and the pending lists of the FIFO groups whose
    fetchable or running job is in this queue) to its kind; ``None`` means "not scanned":
    count every key there may be, pending lists left out.
    """

    name: str
    keys: dict[str, KeyKind] | None = field(default_factory=dict)

    def with_job_lists(self, space: KeySpace) -> QueueKeys:
        """These keys plus the waiting lanes and the failed list, which a producer may create after discovery.

        A reader that keeps a discovery for a while (the alert loop) counts these, so a queue that
        was empty when it was discovered is still seen filling up.
        """
        if self.keys is None:
            return self
        return QueueKeys(self.name, {**_job_list_keys(space, self.name), **self.keys})


_COUNTED = frozenset(
    {
        KeyKind.QUEUE,
        KeyKind.LANE,
        KeyKind.DELAYED,
        KeyKind.FAILED,
        KeyKind.ACTIVE_SET,
        KeyKind.PROCESSING,
        KeyKind.PAUSED,
        KeyKind.GROUP_PENDING,
    }
)


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
    pending: dict[GroupRef, str] = field(default_factory=dict)
    """Pending lists of FIFO groups not yet given to a queue: group -> key."""

    def add(self, key: str, kind: KeyKind, owner: int) -> None:
        self.keys.append(key)
        self.kinds.append(kind)
        self.owners.append(owner)

    def by_queue(self) -> dict[str, dict[str, KeyKind]]:
        """The keys found, queue by queue."""
        queues: dict[str, dict[str, KeyKind]] = {name: {} for name in self.names}
        for key, kind, owner in zip(self.keys, self.kinds, self.owners):
            queues[self.names[owner]][key] = kind
        return queues

    def attribute_pending(self, client: redis.Redis, space: KeySpace) -> None:
        """Give each pending list found to the queue of its group's fetchable or running job."""
        if not self.pending:
            return
        owners = {name: index for index, name in enumerate(self.names)}
        homes = attribute_groups(client, space, self.by_queue(), self.pending)
        for ref, key in self.pending.items():
            home = homes.get(ref)
            if home in owners:
                self.add(key, KeyKind.GROUP_PENDING, owners[home])
            else:
                logger.debug("group=%s has jobs pending but none fetchable or running; see `zenith doctor`", ref[1])
        self.pending = {}

    @classmethod
    def of(cls, space: KeySpace, queues: Iterable[QueueKeys]) -> _Found:
        found = cls()
        for owner, queue in enumerate(queues):
            found.names.append(queue.name)
            keys = queue.keys if queue.keys is not None else _all_keys(space, queue.name)
            for key, kind in keys.items():
                found.add(key, kind, owner)
        return found


def _scan(client: redis.Redis, space: KeySpace, *, attribute: bool = True) -> _Found:
    """One complete SCAN pass over the queue prefix, plus the queue index; names in the order found.

    With ``attribute``, the pending lists found are given to their queues (else left in ``pending``).
    """
    found = _Found()
    owners: dict[str, int] = {}
    unusable: set[str] = set()
    parse = space.queue_key_parser()
    for raw_key in client.scan_iter(match=f"{space.queue_prefix}*", count=SCAN_COUNT):
        key = text_of(raw_key)
        parsed = parse(key)
        if parsed is not None and parsed.kind is KeyKind.GROUP_PENDING and parsed.part:
            found.pending[(parsed.queue, parsed.part)] = key
            continue
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
        name = text_of(raw_name)
        if name not in owners and _valid(name):
            owners[name] = len(found.names)
            found.names.append(name)
    if attribute:
        found.attribute_pending(client, space)
    return found


def discover_queues(client: redis.Redis, keyspace: KeySpace | None = None) -> dict[str, QueueKeys]:
    """Every queue under the queue prefix, found in one complete SCAN pass, plus the queue index.

    When FIFO groups have jobs pending, each pending list is given to the queue of its group's
    fetchable or running job, which takes a read of the queues' jobs (group ids only).
    """
    found = _scan(client, keyspace or KeySpace())
    by_queue = found.by_queue()
    return {name: QueueKeys(name, by_queue[name]) for name in sorted(by_queue)}


def require_queue(client: redis.Redis, queue: str, *, keyspace: KeySpace | None = None) -> None:
    """Check that ``queue`` exists: it is in the queue index or holds waiting, delayed, failed or running jobs.

    Running jobs are looked for last (a SCAN), for a queue only a Node producer wrote whose jobs
    are all fetched or waiting behind their FIFO group.

    Raises:
        ConfigError: the name cannot be a queue's.
        NotFoundError: no such queue.
    """
    validate_queue_name(queue)
    space = keyspace or KeySpace()
    pipe = client.pipeline(transaction=False)
    pipe.sismember(space.queue_index(), queue)
    pipe.exists(*space.lanes_in_poll_order(queue), *space.delayed_in_poll_order(queue), space.failed(queue))
    known, keys = pipe.execute()
    if known or keys:
        return
    if next(client.scan_iter(match=space.processing(queue, "*"), count=1000), None) is None:
        raise NotFoundError("queue", queue, hint="`zenith queues` lists the queues that exist")


def _job_list_keys(space: KeySpace, name: str) -> dict[str, KeyKind]:
    keys = {space.lane(name, lane): KeyKind.LANE for lane in PRIORITY_LANES}
    keys[space.queue(name)] = KeyKind.QUEUE
    keys[space.failed(name)] = KeyKind.FAILED
    return keys


def _all_keys(space: KeySpace, name: str) -> dict[str, KeyKind]:
    keys = _job_list_keys(space, name)
    for lane in LANES_IN_POLL_ORDER:
        keys[space.delayed(name, lane)] = KeyKind.DELAYED
        keys[space.paused(name, lane)] = KeyKind.PAUSED
    keys[space.active_set(name)] = KeyKind.ACTIVE_SET
    return keys


_COUNT_READS = {
    KeyKind.QUEUE: "LLEN",
    KeyKind.LANE: "LLEN",
    KeyKind.PROCESSING: "LLEN",
    KeyKind.FAILED: "LLEN",
    KeyKind.DELAYED: "ZCARD",
    KeyKind.ACTIVE_SET: "SCARD",
    KeyKind.PAUSED: "GET",
    KeyKind.GROUP_PENDING: "LLEN",
}
"""The read that counts each kind of key (in the count script, or one by one)."""
_COUNT_CODES = {kind: read[0] for kind, read in _COUNT_READS.items()}
"""The count script's letter for each read: L, Z, S or G."""

PRIORITY_ORDER = [lane for lane in LANES_IN_POLL_ORDER if lane]

COUNT_BATCH = 1000
"""Keys counted per script call in the wire layout (each call is short: about 1 µs per key)."""


def queue_snapshots(
    client: redis.Redis, keyspace: KeySpace | None = None, queues: Iterable[QueueKeys] | None = None
) -> list[QueueSnapshot]:
    """Counts of every queue (discovered now unless given), by name, read in one pipelined round trip.

    Only keys that discovery saw are read, so a queue with two keys costs two key reads. The
    reads run in a read-only script, many keys per call (one queue per call in the cluster-safe
    layout, whose queues live in different slots).
    """
    space = keyspace or KeySpace()
    found = _scan(client, space) if queues is None else _Found.of(space, queues)
    totals = _Totals(found.names, space)
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
    calls = [
        (COUNT, [found.keys[index] for index in batch], ["".join(_COUNT_CODES[found.kinds[index]] for index in batch)])
        for batch in batches
    ]
    replies = scripts_for(client).read_only(calls)
    if replies is None:
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

    def __init__(self, names: list[str], space: KeySpace) -> None:
        self.names = names
        self.space = space
        self.waiting = [0] * len(names)
        self.delayed = [0] * len(names)
        self.failed = [0] * len(names)
        self.active = [0] * len(names)
        self.grouped = [0] * len(names)
        self.paused = [False] * len(names)
        self.lanes: dict[int, dict[str, int]] = {}
        self.paused_lanes: dict[int, set[str]] = {}

    def add(self, owner: int, key: str, kind: KeyKind, value: object) -> None:
        name = self.names[owner]
        if kind is KeyKind.PAUSED:
            paused = _paused(value, name)  # type: ignore[arg-type]
            head = key.removesuffix(":paused")
            if head == self.space.queue(name):
                self.paused[owner] = paused
            elif paused:
                self.paused_lanes.setdefault(owner, set()).add(head.rsplit(":", 1)[1])
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
        elif kind is KeyKind.GROUP_PENDING:
            self.grouped[owner] += count
        else:  # the legacy active set and the processing lists
            self.active[owner] += count

    def snapshot(self, owner: int, now_ms: int) -> QueueSnapshot:
        return QueueSnapshot(
            name=self.names[owner],
            waiting=self.waiting[owner],
            delayed=self.delayed[owner],
            failed=self.failed[owner],
            active=self.active[owner],
            grouped=self.grouped[owner],
            paused=self.paused[owner],
            paused_lanes=[lane for lane in PRIORITY_ORDER if lane in self.paused_lanes.get(owner, ())],
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
