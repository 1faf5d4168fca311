"""Who is out there: every worker heartbeat and every pulse node, Node or Python, in a few round trips.

:func:`list_workers` reads the heartbeats of both key forms (``flux_console:worker:<id>``, and
``queue:worker:<id>`` where a Node consumer without monitor prefix writes them) in both shapes,
and the worker index, so a worker whose heartbeat expired while it is still registered (what
recovery treats as dead) is listed and marked stale instead of vanishing. :func:`list_nodes`
reads the pulse nodes of both key forms (``pulse:`` and the Node agent's ``gravito:quasar:node:``)
and merges them: one node per service and node id, the newest report winning.

Keys are found with SCAN (never KEYS) and read with pipelined GETs, a batch per round trip.
A value that does not decode is listed with the reason, never raised. Each call walks the key
space: a console calls it on a timer and caches the answer, not once per page view.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, TypeVar, cast

import redis
from redis.exceptions import ResponseError

from zenith_protocol import (
    ErrorKind,
    KeyKind,
    KeySpace,
    ProtocolError,
    PulseKeyForm,
    PulseNode,
    WorkerHeartbeat,
    WorkerStatus,
    decode_heartbeat,
    decode_pulse,
    decode_worker_queues,
    encode_heartbeat,
    encode_pulse,
)
from zenith_protocol.workers import HEARTBEAT_TTL_S
from zenith_sdk._wire import text_of

__all__ = [
    "NodeEntry",
    "StaleReason",
    "WorkerEntry",
    "list_nodes",
    "list_workers",
    "scan_node_keys",
    "scan_worker_keys",
]

SCAN_COUNT = 1000
READ_BATCH = 500
"""Keys read per pipeline (one round trip each)."""

_NODE_LANGUAGE = "node"
"""What a heartbeat without ``protocolVersion`` runs: only the Node system writes that form."""


class StaleReason(str, Enum):
    """Why a listed worker counts as gone."""

    HEARTBEAT_EXPIRED = "heartbeat_expired"
    """Its heartbeat key is gone but it is still in the worker index: recovery treats it as dead
    (once the index entry is older than the heartbeat TTL) and puts its jobs back."""
    INDEX_NOT_REFRESHED = "index_not_refreshed"
    """Its heartbeat key exists but its index entry is older than the heartbeat TTL."""
    HEARTBEAT_TOO_OLD = "heartbeat_too_old"
    """Its heartbeat key exists but the heartbeat's own timestamp is older than the heartbeat TTL."""

    @property
    def description(self) -> str:
        """The reason in words, for people."""
        return _STALE_WORDS[self]


_STALE_WORDS = {
    StaleReason.HEARTBEAT_EXPIRED: "heartbeat expired, still registered",
    StaleReason.INDEX_NOT_REFRESHED: "index entry older than the heartbeat TTL",
    StaleReason.HEARTBEAT_TOO_OLD: "last heartbeat older than the heartbeat TTL",
}


@dataclass(frozen=True)
class WorkerEntry:
    """One worker, as its heartbeat and the worker index show it.

    ``heartbeat`` is ``None`` when the key holds something that does not decode (``problem``
    says why, ``raw`` keeps the bytes) or when the worker is only in the index (``key`` is
    ``None``: its heartbeat expired). ``stale`` says why the worker counts as gone, ``None``
    while it is alive.
    """

    id: str
    key: str | None
    heartbeat: WorkerHeartbeat | None
    problem: ProtocolError | None = None
    raw: bytes | None = None
    keys: tuple[str, ...] = ()
    """Every heartbeat key of this id (the console key, the Node consumer's own, or both)."""
    indexed_ms: int | None = None
    """Its score in the worker index (time of its last registered heartbeat); ``None``: not indexed."""
    index_queues: tuple[str, ...] = ()
    """The queues the worker registered (what recovery reads when the heartbeat is gone)."""
    last_seen_ms: int | None = None
    age_ms: int | None = None
    stale: StaleReason | None = None

    @property
    def language(self) -> str | None:
        """The runtime the heartbeat names; ``node`` for the Node system's forms; ``None``: not said."""
        if self.heartbeat is None:
            return None
        if self.heartbeat.language:
            return self.heartbeat.language
        return _NODE_LANGUAGE if self.heartbeat.is_legacy else None

    @property
    def status(self) -> str | None:
        """``idle``, ``busy``, ``online``, ``stopping``, another writer's word, or ``None``."""
        status = self.heartbeat.status if self.heartbeat is not None else None
        return status.value if isinstance(status, WorkerStatus) else status

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues the heartbeat lists, else those in the index."""
        if self.heartbeat is not None and self.heartbeat.queues:
            return tuple(self.heartbeat.queues)
        return self.index_queues

    @property
    def concurrency(self) -> int | None:
        """Jobs it runs at once, when its heartbeat says (the Node consumer's does not)."""
        heartbeat = self.heartbeat
        return heartbeat.concurrency if heartbeat is not None and "concurrency" in heartbeat.model_fields_set else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and HTTP (the heartbeat in its canonical wire form)."""
        heartbeat = self.heartbeat
        return {
            "id": self.id,
            "key": self.key,
            "keys": list(self.keys),
            "language": self.language,
            "hostname": heartbeat.hostname if heartbeat else None,
            "pid": heartbeat.pid if heartbeat else None,
            "queues": list(self.queues),
            "status": self.status,
            "currentJobId": heartbeat.current_job_id if heartbeat else None,
            "jobName": heartbeat.job_name if heartbeat else None,
            "memory": heartbeat.memory.model_dump(by_alias=True) if heartbeat else None,
            "uptime": heartbeat.uptime_s if heartbeat else None,
            "concurrency": self.concurrency,
            "lastSeenMs": self.last_seen_ms,
            "ageMs": self.age_ms,
            "indexedMs": self.indexed_ms,
            "stale": self.stale is not None,
            "staleReason": self.stale.value if self.stale else None,
            "error": self.problem.reason if self.problem else None,
            "raw": _preview(self.raw) if self.problem else None,
            "heartbeat": _wire(encode_heartbeat, heartbeat),
        }


@dataclass(frozen=True)
class NodeEntry:
    """One pulse node, merged over both key forms: the newest report found for its service and id.

    ``node`` is ``None`` when no key of it holds a report that decodes (``problem`` says why).
    ``stale`` is true when the report is older than 60 s (readers do not count it as live).
    """

    service: str
    node_id: str
    key: str
    node: PulseNode | None
    problem: ProtocolError | None = None
    raw: bytes | None = None
    keys: tuple[str, ...] = ()
    """Every key the node was found under (``pulse:`` and/or the Node agent's form)."""
    forms: tuple[PulseKeyForm, ...] = ()
    """The key forms of :attr:`keys`: ``PulseKeyForm.PULSE`` and/or ``PulseKeyForm.LEGACY``."""
    age_ms: int | None = None
    stale: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` and HTTP (the report in its canonical wire form)."""
        return {
            "service": self.service,
            "nodeId": self.node_id,
            "key": self.key,
            "keys": list(self.keys),
            "forms": [form.value for form in self.forms],
            "language": self.node.language.value if self.node else None,
            "ageMs": self.age_ms,
            "stale": self.stale,
            "error": self.problem.reason if self.problem else None,
            "raw": _preview(self.raw) if self.problem else None,
            "node": _wire(encode_pulse, self.node),
        }


# -- workers ---------------------------------------------------------------------------------------


def list_workers(
    client: redis.Redis,
    *,
    keyspace: KeySpace | None = None,
    ttl_s: float = HEARTBEAT_TTL_S,
    now_ms: int | None = None,
    include_stale: bool = True,
    keys: Iterable[str] | None = None,
) -> list[WorkerEntry]:
    """Every worker, Node or Python, by id: heartbeats of both key forms plus the worker index.

    A worker is stale when its heartbeat key is gone but it is still in the worker index (what
    recovery treats as dead once the entry is older than ``ttl_s``), when its index entry is
    older than ``ttl_s``, or when its heartbeat's own timestamp is. Stale workers are listed,
    marked, unless ``include_stale`` is false.

    Args:
        ttl_s: the heartbeat lifetime staleness is measured against.
        now_ms: the current time in epoch ms (default: this machine's clock).
        keys: the heartbeat keys to read, from an earlier :func:`scan_worker_keys` (default: SCAN now);
            a loop that lists workers often passes a cached scan and rescans now and then.

    Raises:
        redis.RedisError: Redis cannot be reached or refused a read.
    """
    space = keyspace or KeySpace()
    now_ms = _now_ms() if now_ms is None else now_ms
    index = {
        text_of(member): int(score)
        for member, score in cast(
            "list[tuple[bytes | str, float]]", client.zrange(space.worker_index(), 0, -1, withscores=True)
        )
    }
    workers: dict[str, WorkerEntry] = {}
    kinds = (KeyKind.WORKER, KeyKind.LEGACY_WORKER)
    found = (
        _found(space, keys, kinds) if keys is not None else _scan(client, space, space.worker_scan_patterns(), kinds)
    )
    for key, worker_id, value in _values(client, found):
        workers[worker_id] = _merge(workers.get(worker_id), _worker_reading(worker_id, key, value), _seen_ms)
    silent = sorted(set(index) - set(workers))
    for worker_id, queues in zip(silent, _index_queues(client, space, silent)):
        workers[worker_id] = WorkerEntry(worker_id, None, None, index_queues=queues)
    entries = [_judge_worker(entry, index.get(entry.id), ttl_s, now_ms) for _, entry in sorted(workers.items())]
    return [entry for entry in entries if include_stale or entry.stale is None]


def _worker_reading(worker_id: str, key: str, value: object) -> WorkerEntry:
    raw = _as_bytes(value)
    try:
        heartbeat = decode_heartbeat(_checked("heartbeat", value))
    except ProtocolError as exc:
        return WorkerEntry(worker_id, key, None, exc, raw, keys=(key,))
    return WorkerEntry(worker_id, key, heartbeat, raw=raw, keys=(key,))


def _seen_ms(entry: WorkerEntry) -> int | None:
    return _ms(entry.heartbeat.timestamp.timestamp()) if entry.heartbeat is not None else None


def _index_queues(client: redis.Redis, space: KeySpace, worker_ids: list[str]) -> list[tuple[str, ...]]:
    """The queues each worker registered in the queue-list hash (empty when unreadable or absent)."""
    if not worker_ids:
        return []
    return [_queue_list(value) for value in client.hmget(space.worker_queues(), worker_ids)]


def _queue_list(value: bytes | str | None) -> tuple[str, ...]:
    try:
        return tuple(decode_worker_queues(value)) if value is not None else ()
    except ProtocolError:
        return ()


def _judge_worker(entry: WorkerEntry, indexed_ms: int | None, ttl_s: float, now_ms: int) -> WorkerEntry:
    """``entry`` with its index score, last-seen time, age and (if it counts as gone) why."""
    ttl_ms = int(ttl_s * 1000)
    seen_ms = _seen_ms(entry)
    if seen_ms is None:
        seen_ms = indexed_ms
    stale = None
    if entry.key is None:
        stale = StaleReason.HEARTBEAT_EXPIRED
    elif indexed_ms is not None and now_ms - indexed_ms > ttl_ms:
        stale = StaleReason.INDEX_NOT_REFRESHED
    elif entry.heartbeat is not None and seen_ms is not None and now_ms - seen_ms > ttl_ms:
        stale = StaleReason.HEARTBEAT_TOO_OLD
    age_ms = None if seen_ms is None else max(now_ms - seen_ms, 0)
    return replace(entry, indexed_ms=indexed_ms, last_seen_ms=seen_ms, age_ms=age_ms, stale=stale)


# -- pulse nodes -----------------------------------------------------------------------------------


def list_nodes(
    client: redis.Redis,
    *,
    keyspace: KeySpace | None = None,
    now_ms: int | None = None,
    include_stale: bool = True,
    keys: Iterable[str] | None = None,
) -> list[NodeEntry]:
    """Every pulse node of both key forms, one per service and node id, sorted by service then id.

    A node written under both forms counts once, with the newer report. A report older than
    60 s is stale: listed and marked, or left out when ``include_stale`` is false.

    Args:
        now_ms: the current time in epoch ms (default: this machine's clock).
        keys: the pulse keys to read, from an earlier :func:`scan_node_keys` (default: SCAN now).

    Raises:
        redis.RedisError: Redis cannot be reached or refused a read.
    """
    space = keyspace or KeySpace()
    now_ms = _now_ms() if now_ms is None else now_ms
    nodes: dict[tuple[str, str], NodeEntry] = {}
    kinds = (KeyKind.PULSE, KeyKind.LEGACY_PULSE)
    found = _found(space, keys, kinds) if keys is not None else _scan(client, space, space.pulse_scan_patterns(), kinds)
    for key, part, value in _values(client, found):
        service, _, node_id = part.partition(":")
        nodes[(service, node_id)] = _merge(
            nodes.get((service, node_id)), _node_reading(service, node_id, key, value), _stamp_ms
        )
    entries = [_judge_node(entry, space, now_ms) for _, entry in sorted(nodes.items())]
    return [entry for entry in entries if include_stale or not entry.stale]


def _node_reading(service: str, node_id: str, key: str, value: object) -> NodeEntry:
    raw = _as_bytes(value)
    try:
        node = decode_pulse(_checked("pulse", value))
    except ProtocolError as exc:
        return NodeEntry(service, node_id, key, None, exc, raw, keys=(key,))
    return NodeEntry(service, node_id, key, node, raw=raw, keys=(key,))


def _stamp_ms(entry: NodeEntry) -> int | None:
    return entry.node.timestamp if entry.node is not None else None


def _judge_node(entry: NodeEntry, space: KeySpace, now_ms: int) -> NodeEntry:
    """``entry`` with the key forms it was found under, its age and whether it is stale."""
    kinds = {parsed.kind for parsed in map(space.parse, entry.keys) if parsed is not None}
    forms = tuple(form for form, kind in _FORM_KINDS if kind in kinds)
    if entry.node is None:
        return replace(entry, forms=forms)
    age_ms = max(now_ms - entry.node.timestamp, 0)
    return replace(entry, forms=forms, age_ms=age_ms, stale=entry.node.is_stale(now_ms))


_FORM_KINDS = ((PulseKeyForm.PULSE, KeyKind.PULSE), (PulseKeyForm.LEGACY, KeyKind.LEGACY_PULSE))


# -- shared ----------------------------------------------------------------------------------------

E = TypeVar("E", WorkerEntry, NodeEntry)


def _merge(current: E | None, candidate: E, stamp: Callable[[E], int | None]) -> E:
    """Two readings of one worker or node as one: the one that decodes, else the later one; every key of both."""
    if current is None:
        return candidate
    keys: tuple[str, ...] = tuple(sorted(set(current.keys) | set(candidate.keys)))
    ours, theirs = stamp(current), stamp(candidate)
    chosen = candidate if theirs is not None and (ours is None or theirs > ours) else current
    return replace(chosen, keys=keys)


def scan_worker_keys(client: redis.Redis, *, keyspace: KeySpace | None = None) -> list[str]:
    """Every worker heartbeat key of both forms, found with SCAN (to pass to :func:`list_workers` later)."""
    space = keyspace or KeySpace()
    return list(_scan(client, space, space.worker_scan_patterns(), (KeyKind.WORKER, KeyKind.LEGACY_WORKER)))


def scan_node_keys(client: redis.Redis, *, keyspace: KeySpace | None = None) -> list[str]:
    """Every pulse node key of both forms, found with SCAN (to pass to :func:`list_nodes` later)."""
    space = keyspace or KeySpace()
    return list(_scan(client, space, space.pulse_scan_patterns(), (KeyKind.PULSE, KeyKind.LEGACY_PULSE)))


def _found(space: KeySpace, keys: Iterable[str], kinds: tuple[KeyKind, ...]) -> dict[str, str]:
    """``keys`` of ``kinds``, each with its variable part (others left out)."""
    found: dict[str, str] = {}
    for key in keys:
        parsed = space.parse(key)
        if parsed is not None and parsed.kind in kinds and parsed.part:
            found[key] = parsed.part
    return found


def _scan(client: redis.Redis, space: KeySpace, patterns: Iterable[str], kinds: tuple[KeyKind, ...]) -> dict[str, str]:
    """Key -> variable part of every key of ``kinds`` the SCAN patterns find (SCAN may return a key twice)."""
    found: dict[str, str] = {}
    for pattern in patterns:
        for raw_key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            key = text_of(raw_key)
            parsed = space.parse(key) if key not in found else None
            if parsed is not None and parsed.kind in kinds and parsed.part:
                found[key] = parsed.part
    return found


def _values(client: redis.Redis, found: dict[str, str]) -> Iterator[tuple[str, str, object]]:
    """``(key, variable part, value)`` of every key ``found``, read with GET, :data:`READ_BATCH` keys per round trip.

    A key of another type reads as its reply error, and a key that expired since it was found is left out.
    """
    keys = list(found)
    for start in range(0, len(keys), READ_BATCH):
        batch = keys[start : start + READ_BATCH]
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.get(key)
        for key, value in zip(batch, pipe.execute(raise_on_error=False)):
            if value is not None:
                yield key, found[key], value


def _checked(structure: str, value: object) -> Any:
    """``value`` as the decoder takes it; a reply error (WRONGTYPE) becomes the entry's :class:`ProtocolError`."""
    if isinstance(value, ResponseError):
        raise ProtocolError(structure, ErrorKind.INVALID_VALUE, f"the key is not a string ({value})")
    return value


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return value if isinstance(value, bytes) else None


def _preview(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


def _wire(encode: Callable[[Any], str], model: Any) -> Any:
    return None if model is None else json.loads(encode(model))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _now_ms() -> int:
    return _ms(time.time())
