"""``zenith doctor``: read every Zenith structure in a Redis and check it against the protocol.

It SCANs (never KEYS) each prefix of a :class:`~zenith_protocol.KeySpace`, classifies every
key, reads its entries with pipelined commands in bounded chunks and reports, per key pattern,
how many entries are canonical, legacy, not canonical or invalid. An entry that carries
``protocolVersion`` is re-encoded and compared byte for byte, and checked for the members its
writer must write (:func:`zenith_protocol.canonical.check_canonical`); a key that must expire is
checked for its TTL. It also reports what no entry shows alone: FIFO groups that are stuck and
processing lists whose worker is gone. Reads only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import redis

from zenith_protocol import CODECS, KeyKind, KeySpace, ProtocolError
from zenith_protocol.canonical import KEY_TTL_S, check_canonical
from zenith_protocol.pulse import PULSE_STALE_AFTER_MS
from zenith_sdk._doctor_report import DoctorReport, Finding, Issue, PatternStats, Severity
from zenith_sdk.control.groups import stuck_groups
from zenith_sdk.worker._recovery import find_orphans

__all__ = ["DoctorReport", "Finding", "Issue", "PatternStats", "run_doctor"]

MIN_REDIS_VERSION = (6, 2, 0)
_SCAN_COUNT = 1000
_CHUNK = 500
_ROUND_ENTRIES = 2000
"""Entries asked for in one pipeline round trip, across the keys of a batch."""
_MAX_UNRECOGNISED_LISTED = 50
_LEGACY_ONLY = frozenset({KeyKind.LEGACY_WORKER, KeyKind.LEGACY_PULSE})
"""Keys only legacy writers write: what is wrong there is a warning, never an error."""


@dataclass(frozen=True)
class _Rule:
    """How to read and check the keys of one kind."""

    pattern: Callable[[KeySpace], str]
    redis_type: str
    structure: str
    reader: str


_RULES: dict[KeyKind, _Rule] = {
    KeyKind.QUEUE: _Rule(lambda s: s.queue("<name>"), "list", "job", "list"),
    KeyKind.LANE: _Rule(lambda s: s.lane("<name>", "<priority>"), "list", "job", "list"),
    KeyKind.DELAYED: _Rule(lambda s: s.delayed("<name>"), "zset", "job", "zset"),
    KeyKind.FAILED: _Rule(lambda s: s.failed("<name>"), "list", "job", "list"),
    KeyKind.PROCESSING: _Rule(lambda s: s.processing("<name>", "<workerId>"), "list", "job", "list"),
    KeyKind.ACTIVE_SET: _Rule(lambda s: s.active_set("<name>"), "set", "members", "scard"),
    KeyKind.PAUSED: _Rule(lambda s: s.paused("<name>"), "string", "paused_flag", "string"),
    KeyKind.RATE_LIMIT: _Rule(lambda s: s.rate_limit("<name>", "<window>"), "string", "counter", "string"),
    KeyKind.GROUP_ACTIVE: _Rule(lambda s: s.group_active("<name>"), "set", "members", "scard"),
    KeyKind.GROUP_PENDING: _Rule(lambda s: s.group_pending("<name>", "<groupId>"), "list", "job", "list"),
    KeyKind.SCHEDULES: _Rule(lambda s: s.schedules(), "zset", "schedule_index", "schedule_index"),
    KeyKind.SCHEDULE: _Rule(lambda s: s.schedule("<id>"), "hash", "schedule", "hash"),
    KeyKind.SCHEDULE_LOCK: _Rule(lambda s: s.schedule_lock("<id>", "<epochSeconds>"), "string", "lock", "lock"),
    KeyKind.WORKER: _Rule(lambda s: s.worker("<workerId>"), "string", "heartbeat", "string"),
    KeyKind.LEGACY_WORKER: _Rule(lambda s: s.legacy_worker("<workerId>"), "string", "heartbeat", "string"),
    KeyKind.LOG_HISTORY: _Rule(lambda s: s.logs_history(), "list", "log", "list"),
    KeyKind.THROUGHPUT: _Rule(lambda s: s.throughput("<epochMinute>"), "string", "counter", "string"),
    KeyKind.METRIC: _Rule(lambda s: s.metric("<name>", "<epochMinute>"), "string", "counter", "string"),
    KeyKind.PULSE: _Rule(lambda s: s.pulse("<service>", "<nodeId>"), "string", "pulse", "string"),
    KeyKind.LEGACY_PULSE: _Rule(lambda s: s.legacy_pulse("<service>", "<nodeId>"), "string", "pulse", "string"),
    KeyKind.ALERT_RULES: _Rule(lambda s: s.alert_rules(), "string", "alert_rules", "string"),
    KeyKind.ALERT_CONFIG: _Rule(lambda s: s.alert_config(), "string", "alert_config", "string"),
    KeyKind.MAINTENANCE_CONFIG: _Rule(lambda s: s.maintenance_config(), "string", "maintenance_config", "string"),
    KeyKind.EVENTS: _Rule(lambda s: s.events(), "stream", "event_fields", "stream"),
    KeyKind.QUEUE_INDEX: _Rule(lambda s: s.queue_index(), "set", "members", "scard"),
    KeyKind.WORKER_INDEX: _Rule(lambda s: s.worker_index(), "zset", "members", "zcard"),
    KeyKind.WORKER_QUEUES: _Rule(lambda s: s.worker_queues(), "hash", "members", "hlen"),
    KeyKind.QUEUE_COUNTERS: _Rule(lambda s: s.queue_counters("<name>"), "hash", "members", "hlen"),
    KeyKind.SWEEP_LOCK: _Rule(lambda s: s.sweep_lock(), "string", "lock", "lock"),
    # Short-lived batches of event texts (PROTOCOL 8.1), written to the stream within tens of ms: counted.
    KeyKind.STAGED_EVENTS: _Rule(lambda s: s.staged_events("<workerId>"), "list", "members", "llen"),
    KeyKind.CONSOLE_TASK: _Rule(lambda s: s.console_task("<taskId>"), "hash", "members", "hlen"),
    KeyKind.ALERT_STATES: _Rule(lambda s: s.alerts_states(), "hash", "alert_state", "hash_values"),
    KeyKind.ALERT_OUTBOX: _Rule(lambda s: s.alerts_outbox(), "stream", "alert_notification", "stream"),
    KeyKind.ALERT_HISTORY: _Rule(lambda s: s.alerts_history(), "list", "alert_transition", "list"),
    KeyKind.ALERT_SILENCES: _Rule(lambda s: s.alerts_silences(), "hash", "alert_silence", "hash_values"),
    KeyKind.ALERT_MUTES: _Rule(lambda s: s.alerts_mutes(), "hash", "alert_mute_window", "hash_values"),
    KeyKind.ALERT_CHANNELS: _Rule(lambda s: s.alerts_channels(), "hash", "alert_channel_health", "hash_values"),
    KeyKind.ALERT_DELIVERED: _Rule(
        lambda s: s.alerts_delivered("<notificationId>", "<channel>"), "string", "lock", "lock"
    ),
}

_SIZE = {
    "list": "llen",
    "llen": "llen",
    "zset": "zcard",
    "stream": "xlen",
    "scard": "scard",
    "zcard": "zcard",
    "hlen": "hlen",
}


@dataclass
class _Key:
    """One key of a batch being read: what it is, its TTL, and how far its entries have been read."""

    name: str
    kind: KeyKind
    stats: PatternStats
    ttl_ms: int
    remaining: int = 0
    position: int = 0
    cursor: str = "-"


class _Doctor:
    def __init__(self, client: redis.Redis, space: KeySpace, sample: int | None, now_ms: int | None) -> None:
        self.client = client
        self.space = space
        self.sample = sample
        self.now_ms = now_ms
        self.report = DoctorReport(redis_version=_server_version(client))

    def stats(self, kind: KeyKind, key: str, part: str | None = None) -> PatternStats:
        rule = _RULES[kind]
        pattern = rule.pattern(self.space)
        if kind is KeyKind.LOG_HISTORY:
            pattern = key  # two fixed keys: the console's history and a Node consumer's own
        if kind in (KeyKind.DELAYED, KeyKind.PAUSED) and part:  # a lane's own delayed set or paused flag
            suffix = pattern.rsplit(":", 1)[1]
            pattern = f"{self.space.lane('<name>', '<priority>')}:{suffix}"
        if pattern not in self.report.patterns:
            self.report.patterns[pattern] = PatternStats(pattern, rule.structure, rule.redis_type)
        return self.report.patterns[pattern]

    def check_batch(self, names: list[str]) -> None:
        """Check one SCAN batch of keys: type and TTL in one round trip, then their entries."""
        known = []
        for name in names:
            parsed = self.space.parse(name)
            if parsed is None or parsed.kind not in _RULES:
                self._unrecognised(name)
            else:
                known.append((name, parsed.kind, parsed.part))
        if not known:
            return
        pipe = self.client.pipeline(transaction=False)
        for name, _, _ in known:
            pipe.type(name)
            pipe.pttl(name)
        replies = pipe.execute()
        by_reader: dict[str, list[_Key]] = {}
        for index, (name, kind, part) in enumerate(known):
            found_type, ttl_ms = _text(replies[2 * index]), int(replies[2 * index + 1])
            if found_type == "none":
                continue  # expired between SCAN and TYPE: nothing to check
            stats = self.stats(kind, name, part)
            stats.keys += 1
            if found_type != stats.redis_type:
                reason = f"expected a {stats.redis_type.upper()}, found a {found_type.upper()}"
                stats.add_invalid(Finding(name, "wrong_type", reason))
                continue
            by_reader.setdefault(_RULES[kind].reader, []).append(_Key(name, kind, stats, ttl_ms))
        self._read_strings(by_reader.get("string", []))
        self._read_hashes(by_reader.get("hash", []))
        self._read_hash_values(by_reader.get("hash_values", []))
        for key in by_reader.get("lock", []):
            key.stats.entries += 1
            key.stats.canonical += 1
            self._check_ttl(key, legacy=False)
        for key in by_reader.get("schedule_index", []):
            self._read_schedule_index(key)
        self._read_collections([key for reader in _SIZE for key in by_reader.get(reader, [])])

    def _unrecognised(self, key: str) -> None:
        self.report.unrecognised_count += 1
        if len(self.report.unrecognised) < _MAX_UNRECOGNISED_LISTED:
            self.report.unrecognised.append(key)

    def _check(self, stats: PatternStats, key: str, raw: Any, where: str) -> Any:
        """Decode one entry and hold it to the canonical form; returns what it decoded to, or None."""
        stats.entries += 1
        try:
            decoded = CODECS[stats.structure].decode(raw)
        except ProtocolError as exc:
            stats.add_invalid(Finding(key, exc.kind.value, exc.reason, where))
            return None
        deviation = check_canonical(stats.structure, raw, decoded)
        if deviation is not None:
            stats.not_canonical += 1
            stats.add_issue(Issue.from_deviation(deviation, key, where))
        elif getattr(decoded, "is_legacy", False):
            stats.legacy += 1
        else:
            stats.canonical += 1
        return decoded

    def _check_ttl(self, key: _Key, *, legacy: bool) -> None:
        """A key the spec gives a TTL must have one (an error, or a warning for what legacy writers wrote)."""
        if key.kind not in KEY_TTL_S:
            return
        expected_s = KEY_TTL_S[key.kind]
        severity: Severity = "warning" if legacy or key.kind in _LEGACY_ONLY else "error"
        if key.ttl_ms == -1:
            length = f"a TTL of {expected_s} s" if expected_s is not None else "a TTL"
            reason = f"spec 3.3 gives this key {length}; without one it outlives its writer"
            key.stats.add_issue(Issue(severity, "missing_ttl", "no TTL", reason, key.name))
        elif not legacy and expected_s is not None and key.ttl_ms > expected_s * 1000:
            reason = f"TTL {key.ttl_ms / 1000:g} s is longer than the {expected_s} s of spec 3.3"
            key.stats.add_issue(Issue("warning", "long_ttl", "TTL too long", reason, key.name))

    def _limit(self, total: int) -> int:
        return total if self.sample is None else min(total, self.sample)

    def _read_strings(self, keys: list[_Key]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key.name)
        for key, raw in zip(keys, pipe.execute() if keys else []):
            if raw is None:  # expired since TYPE
                key.stats.keys -= 1
                continue
            decoded = self._check(key.stats, key.name, raw, "value")
            self._check_ttl(key, legacy=bool(getattr(decoded, "is_legacy", False)))
            if key.kind in (KeyKind.PULSE, KeyKind.LEGACY_PULSE) and decoded is not None and self.now_ms is not None:
                if decoded.is_stale(self.now_ms):
                    reason = f"its timestamp is older than {PULSE_STALE_AFTER_MS // 1000} s: readers drop it"
                    key.stats.add_issue(Issue("warning", "stale", "stale", reason, key.name))

    def _read_hashes(self, keys: list[_Key]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key.name)
        for key, raw in zip(keys, pipe.execute() if keys else []):
            self._check(key.stats, key.name, raw, "hash")

    def _read_hash_values(self, keys: list[_Key]) -> None:
        """Hashes whose every value is one JSON entry (the alert states, silences, ...)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key.name)
        for key, raw in zip(keys, pipe.execute() if keys else []):
            fields = sorted(raw.items())
            for name, value in fields[: self._limit(len(fields))]:
                self._check(key.stats, key.name, value, f"field {_text(name)}")

    def _read_schedule_index(self, key: _Key) -> None:
        members = self.client.zrange(key.name, 0, self._limit(int(self.client.zcard(key.name))) - 1)
        ids = [_text(member) for member in members]
        pipe = self.client.pipeline(transaction=False)
        for schedule_id in ids:
            pipe.exists(self.space.schedule(schedule_id))
        for schedule_id, exists in zip(ids, pipe.execute() if ids else []):
            key.stats.entries += 1
            if exists:
                key.stats.canonical += 1
            else:
                reason = f"schedule id {schedule_id!r} is indexed but its hash is missing"
                key.stats.add_invalid(Finding(key.name, "dangling_reference", reason, f"member {schedule_id}"))

    def _read_collections(self, keys: list[_Key]) -> None:
        """Sizes in one round trip, then entries in chunks, many keys per round trip."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            getattr(pipe, _SIZE[_RULES[key.kind].reader])(key.name)
        pending = []
        for key, size in zip(keys, pipe.execute() if keys else []):
            if _RULES[key.kind].reader in ("list", "zset", "stream"):
                key.remaining = self._limit(int(size))
                pending.append(key)
            else:  # members of sets and indexes: nothing to decode
                key.stats.entries += int(size)
                key.stats.canonical += int(size)
        while pending:
            pending = self._read_round(pending)

    def _read_round(self, pending: list[_Key]) -> list[_Key]:
        """Ask for the next chunk of as many keys as one round trip should carry; returns the keys left."""
        batch: list[tuple[_Key, int]] = []
        budget = _ROUND_ENTRIES
        for key in pending:
            if key.remaining == 0 or (batch and budget <= 0):
                continue
            count = min(_CHUNK, key.remaining)
            batch.append((key, count))
            budget -= count
        pipe = self.client.pipeline(transaction=False)
        for key, count in batch:
            reader = _RULES[key.kind].reader
            if reader == "list":
                pipe.lrange(key.name, key.position, key.position + count - 1)
            elif reader == "zset":
                pipe.zrange(key.name, key.position, key.position + count - 1, withscores=True)
            else:
                pipe.xrange(key.name, min=key.cursor, count=count)
        for (key, count), reply in zip(batch, pipe.execute() if batch else []):
            self._consume(key, reply)
            key.remaining = 0 if len(reply) < count else key.remaining - count
        return [key for key in pending if key.remaining > 0]

    def _consume(self, key: _Key, reply: list[Any]) -> None:
        reader = _RULES[key.kind].reader
        if reader == "list":
            for offset, raw in enumerate(reply):
                self._check(key.stats, key.name, raw, f"index {key.position + offset}")
        elif reader == "zset":
            for raw, score in cast("list[tuple[bytes, float]]", reply):
                self._check(key.stats, key.name, raw, f"member scored {int(score)}")
        else:
            for entry_id, fields in reply:
                if key.stats.structure != "event_fields":  # one field holding the entry's JSON (the outbox)
                    fields = _only_field(fields)
                self._check(key.stats, key.name, fields, f"entry {_text(entry_id)}")
            if reply:
                key.cursor = "(" + _text(reply[-1][0])
        key.position += len(reply)


def _only_field(fields: Any) -> Any:
    """The value of a stream entry that carries one field (its JSON), else the map (which will not decode)."""
    values = list(fields.values()) if isinstance(fields, dict) else []
    return values[0] if len(values) == 1 else fields


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _server_version(client: redis.Redis) -> str:
    info = client.info("server")
    return str(info.get("redis_version", "unknown"))


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _scan_keys(client: redis.Redis, patterns: tuple[str, ...]) -> Iterator[list[str]]:
    for pattern in patterns:
        batch: list[str] = []
        for key in client.scan_iter(match=pattern, count=_SCAN_COUNT):
            batch.append(_text(key))
            if len(batch) >= _CHUNK:
                yield batch
                batch = []
        if batch:
            yield batch


def run_doctor(
    client: redis.Redis,
    *,
    keyspace: KeySpace | None = None,
    sample: int | None = None,
    now_ms: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> DoctorReport:
    """Check every Zenith structure in ``client``'s database.

    Args:
        keyspace: key names (default: the wire layout with the default prefixes).
        sample: read at most this many entries of each list, set or stream (``None``: all).
        now_ms: the current time, to flag stale pulse nodes (``None``: no staleness check).
        progress: called with the number of keys checked so far, after each batch.

    Raises:
        redis.ConnectionError: Redis cannot be reached.
    """
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    doctor = _Doctor(client, keyspace or KeySpace(), sample, now_ms)
    report = doctor.report
    if _version_tuple(report.redis_version) < MIN_REDIS_VERSION:
        report.warnings.append(
            f"Redis {report.redis_version} is older than 6.2: the reliable worker needs LMOVE/BLMOVE; upgrade Redis"
        )
    seen: set[str] = set()
    for batch in _scan_keys(client, doctor.space.scan_patterns()):
        fresh = [key for key in batch if key not in seen]  # SCAN may return a key twice
        seen.update(fresh)
        doctor.check_batch(fresh)
        report.keys_scanned += len(fresh)
        if progress is not None:
            progress(report.keys_scanned)
    _check_workers_and_groups(doctor, seen, now_ms)
    report.patterns = dict(sorted(report.patterns.items()))
    return report


_HOLDS_JOBS = "but holds jobs here: a running worker puts them back"
_HOLDS_EVENTS = "and its events here never reached the stream: a running worker writes them"


def _check_workers_and_groups(doctor: _Doctor, keys: set[str], now_ms: int | None) -> None:
    """What no single entry shows: processing and staged events lists whose worker is gone (among
    ``keys``, those the scan found), and stuck FIFO groups."""
    report, space = doctor.report, doctor.space
    orphans = find_orphans(doctor.client, space, now_ms=now_ms, keys=keys)
    report.orphaned = orphans.processing
    found = [
        (KeyKind.PROCESSING, space.processing(queue, worker_id), worker_id, _HOLDS_JOBS)
        for worker_id, queues in report.orphaned.items()
        for queue in queues
    ]
    found += [
        (KeyKind.STAGED_EVENTS, space.staged_events(worker_id), worker_id, _HOLDS_EVENTS)
        for worker_id in orphans.staged
    ]
    for kind, key, worker_id, left in found:
        reason = (
            f"worker {worker_id} is gone (no heartbeat) {left} within its recovery interval, or run `zenith recover`"
        )
        doctor.stats(kind, key).add_issue(Issue("warning", "orphaned", "worker gone", reason, key))
    report.stuck_groups = stuck_groups(doctor.client, space)
