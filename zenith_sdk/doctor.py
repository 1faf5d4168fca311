"""``zenith doctor``: read every Zenith structure in a Redis and validate it with the decoders.

It SCANs (never KEYS) each prefix of a :class:`~zenith_protocol.KeySpace`, classifies every
key, reads its entries in bounded chunks and reports, per key pattern, how many entries are
canonical, how many are accepted legacy forms and which are invalid and why. It also reports
what no entry shows alone: FIFO groups that are stuck (jobs wait behind a group that nothing
will release) and processing lists whose worker is gone. Reads only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from zenith_protocol import CODECS, KeyKind, KeySpace, ProtocolError
from zenith_protocol.pulse import PULSE_STALE_AFTER_MS
from zenith_sdk.control.groups import GroupStatus, stuck_groups
from zenith_sdk.worker._recovery import orphaned_processing_lists

__all__ = ["DoctorReport", "Finding", "PatternStats", "run_doctor"]

MIN_REDIS_VERSION = (6, 2, 0)
_SCAN_COUNT = 1000
_CHUNK = 500
_MAX_FINDINGS_PER_PATTERN = 50
_MAX_UNRECOGNISED_LISTED = 50


@dataclass(frozen=True)
class Finding:
    """One invalid entry: where it is and why it does not decode."""

    key: str
    kind: str
    reason: str
    where: str = ""

    def to_dict(self) -> dict[str, str]:
        """Plain data for ``--json``."""
        return {"key": self.key, "where": self.where, "kind": self.kind, "reason": self.reason}


@dataclass
class PatternStats:
    """Counts for one key pattern (e.g. ``queue:<name>:failed``)."""

    pattern: str
    structure: str
    redis_type: str
    keys: int = 0
    entries: int = 0
    canonical: int = 0
    legacy: int = 0
    invalid: int = 0
    findings: list[Finding] = field(default_factory=list)

    def add_invalid(self, finding: Finding) -> None:
        """Count an invalid entry, keeping the first few findings."""
        self.invalid += 1
        if len(self.findings) < _MAX_FINDINGS_PER_PATTERN:
            self.findings.append(finding)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "pattern": self.pattern,
            "structure": self.structure,
            "redisType": self.redis_type,
            "keys": self.keys,
            "entries": self.entries,
            "canonical": self.canonical,
            "legacy": self.legacy,
            "invalid": self.invalid,
            "findings": [finding.to_dict() for finding in self.findings],
        }


@dataclass
class DoctorReport:
    """Everything ``zenith doctor`` found in one Redis."""

    redis_version: str
    keys_scanned: int = 0
    patterns: dict[str, PatternStats] = field(default_factory=dict)
    unrecognised: list[str] = field(default_factory=list)
    unrecognised_count: int = 0
    warnings: list[str] = field(default_factory=list)
    stuck_groups: list[GroupStatus] = field(default_factory=list)
    """FIFO groups whose jobs nothing will run (``zenith recover`` lets them go on)."""
    orphaned: dict[str, list[str]] = field(default_factory=dict)
    """Processing lists whose worker is gone: worker id -> queues (running workers recover them)."""

    @property
    def invalid(self) -> int:
        """Number of invalid entries across every pattern."""
        return sum(stats.invalid for stats in self.patterns.values())

    @property
    def ok(self) -> bool:
        """True when nothing is invalid and no group is stuck (warnings do not count)."""
        return self.invalid == 0 and not self.stuck_groups

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "ok": self.ok,
            "redisVersion": self.redis_version,
            "keysScanned": self.keys_scanned,
            "invalid": self.invalid,
            "patterns": [stats.to_dict() for stats in self.patterns.values()],
            "unrecognisedCount": self.unrecognised_count,
            "unrecognised": self.unrecognised,
            "warnings": self.warnings,
            "stuckGroups": [
                {"group": g.id, "queue": g.queue, "held": g.held, "pending": g.pending} for g in self.stuck_groups
            ],
            "orphanedProcessingLists": [
                {"workerId": worker_id, "queues": queues} for worker_id, queues in self.orphaned.items()
            ],
        }


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
    KeyKind.ACTIVE_SET: _Rule(lambda s: s.active_set("<name>"), "set", "members", "set"),
    KeyKind.PAUSED: _Rule(lambda s: s.paused("<name>"), "string", "paused_flag", "string"),
    KeyKind.RATE_LIMIT: _Rule(lambda s: s.rate_limit("<name>", "<window>"), "string", "counter", "string"),
    KeyKind.GROUP_ACTIVE: _Rule(lambda s: s.group_active("<name>"), "set", "members", "set"),
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
    KeyKind.QUEUE_INDEX: _Rule(lambda s: s.queue_index(), "set", "members", "set"),
    KeyKind.WORKER_INDEX: _Rule(lambda s: s.worker_index(), "zset", "members", "zcard"),
    KeyKind.WORKER_QUEUES: _Rule(lambda s: s.worker_queues(), "hash", "members", "hlen"),
}


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

    def check_batch(self, keys: list[str]) -> None:
        parsed = [(key, self.space.parse(key)) for key in keys]
        known = [(key, p.kind, p.part) for key, p in parsed if p is not None and p.kind in _RULES]
        for key, p in parsed:
            if p is None or p.kind not in _RULES:
                self._unrecognised(key)
        pipe = self.client.pipeline(transaction=False)
        for key, _, _ in known:
            pipe.type(key)
        types = [_text(t) for t in pipe.execute()] if known else []
        for (key, kind, part), found_type in zip(known, types):
            if found_type == "none":
                continue  # expired between SCAN and TYPE: nothing to check
            stats = self.stats(kind, key, part)
            stats.keys += 1
            if found_type != stats.redis_type:
                reason = f"expected a {stats.redis_type.upper()}, found a {found_type.upper()}"
                stats.add_invalid(Finding(key, "wrong_type", reason))
                continue
            getattr(self, f"_read_{_RULES[kind].reader}")(key, kind, stats)

    def _unrecognised(self, key: str) -> None:
        self.report.unrecognised_count += 1
        if len(self.report.unrecognised) < _MAX_UNRECOGNISED_LISTED:
            self.report.unrecognised.append(key)

    def _check(self, stats: PatternStats, key: str, raw: Any, where: str) -> Any:
        stats.entries += 1
        try:
            decoded = CODECS[stats.structure].decode(raw)
        except ProtocolError as exc:
            stats.add_invalid(Finding(key, exc.kind.value, exc.reason, where))
            return None
        if getattr(decoded, "is_legacy", False):
            stats.legacy += 1
        else:
            stats.canonical += 1
        return decoded

    def _limit(self, total: int) -> int:
        return total if self.sample is None else min(total, self.sample)

    def _read_list(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        total = self._limit(int(self.client.llen(key)))
        for start in range(0, total, _CHUNK):
            stop = min(start + _CHUNK, total) - 1
            for offset, raw in enumerate(self.client.lrange(key, start, stop)):
                self._check(stats, key, raw, f"index {start + offset}")

    def _read_zset(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        total = self._limit(int(self.client.zcard(key)))
        for start in range(0, total, _CHUNK):
            stop = min(start + _CHUNK, total) - 1
            members = self.client.zrange(key, start, stop, withscores=True)
            for raw, score in cast("list[tuple[bytes, float]]", members):
                self._check(stats, key, raw, f"member scored {int(score)}")

    def _read_schedule_index(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        ids = [_text(member) for member in self.client.zrange(key, 0, self._limit(int(self.client.zcard(key))) - 1)]
        pipe = self.client.pipeline(transaction=False)
        for schedule_id in ids:
            pipe.exists(self.space.schedule(schedule_id))
        for schedule_id, exists in zip(ids, pipe.execute() if ids else []):
            stats.entries += 1
            if exists:
                stats.canonical += 1
            else:
                reason = f"schedule id {schedule_id!r} is indexed but its hash is missing"
                stats.add_invalid(Finding(key, "dangling_reference", reason, f"member {schedule_id}"))

    def _read_set(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        count = int(self.client.scard(key))
        stats.entries += count
        stats.canonical += count

    def _read_zcard(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        count = int(self.client.zcard(key))
        stats.entries += count
        stats.canonical += count

    def _read_hlen(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        count = int(self.client.hlen(key))
        stats.entries += count
        stats.canonical += count

    def _read_lock(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        stats.entries += 1
        stats.canonical += 1

    def _read_hash(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        self._check(stats, key, self.client.hgetall(key), "hash")

    def _read_string(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = pipe.execute()
        if raw is None:
            stats.keys -= 1
            return
        decoded = self._check(stats, key, raw, "value")
        if kind in (KeyKind.WORKER, KeyKind.PULSE, KeyKind.LEGACY_PULSE) and ttl == -1:
            self.report.warnings.append(f"{key} has no TTL: it will show forever after its writer stops")
        if kind in (KeyKind.PULSE, KeyKind.LEGACY_PULSE) and decoded is not None and self.now_ms is not None:
            if decoded.is_stale(self.now_ms):
                self.report.warnings.append(f"{key} is stale (older than {PULSE_STALE_AFTER_MS // 1000} s)")

    def _read_stream(self, key: str, kind: KeyKind, stats: PatternStats) -> None:
        remaining = self._limit(int(self.client.xlen(key)))
        cursor = "-"
        while remaining > 0:
            entries = self.client.xrange(key, min=cursor, count=min(_CHUNK, remaining))
            if not entries:
                break
            for entry_id, fields in entries:
                self._check(stats, key, fields, f"entry {_text(entry_id)}")
            remaining -= len(entries)
            cursor = "(" + _text(entries[-1][0])


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
    space: KeySpace | None = None,
    *,
    sample: int | None = None,
    now_ms: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> DoctorReport:
    """Check every Zenith structure in ``client``'s database.

    Args:
        sample: read at most this many entries of each list, set or stream (``None``: all).
        now_ms: the current time, to flag stale pulse nodes (``None``: no staleness check).
        progress: called with the number of keys checked so far, after each batch.

    Raises:
        redis.ConnectionError: Redis cannot be reached.
    """
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    doctor = _Doctor(client, space or KeySpace(), sample, now_ms)
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
    report.patterns = dict(sorted(report.patterns.items()))
    _check_workers_and_groups(client, doctor.space, report, now_ms)
    return report


def _check_workers_and_groups(client: redis.Redis, space: KeySpace, report: DoctorReport, now_ms: int | None) -> None:
    """What no single entry shows: processing lists whose worker is gone, and stuck FIFO groups."""
    report.orphaned = orphaned_processing_lists(client, space, now_ms=now_ms)
    for worker_id, queues in report.orphaned.items():
        report.warnings.append(
            f"worker {worker_id} is gone (no heartbeat) but holds jobs in the processing lists of "
            f"{', '.join(queues)}: a running worker puts them back within its recovery interval, "
            "or run `zenith recover`"
        )
    report.stuck_groups = stuck_groups(client, space)
