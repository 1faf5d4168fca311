"""What each rule type reads from a snapshot: its subjects and their values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zenith_protocol import SUBJECT_ALL, AlertRule, AlertType
from zenith_sdk.alerts.matching import AlertLabels, glob_matches, is_glob, select

if TYPE_CHECKING:
    from zenith_sdk.alerts.evaluate import NodeReading, QueueReading, ScheduleReading, Snapshot

__all__ = ["KNOWN_TYPES", "Readings", "known_subjects", "labels_of", "readings_for"]

QUEUE_PREFIX = "queue:"
NODE_PREFIX = "node:"
SCHEDULE_PREFIX = "schedule:"
CHANNEL_PREFIX = "channel:"
ARCHIVE_PREFIX = "archive:"


@dataclass(frozen=True)
class Readings:
    """One rule's view of a snapshot.

    ``values`` holds every subject in the rule's scope (``None``: no data for it); ``present``
    every subject the snapshot part has, in scope or not. ``None`` for the whole object means the
    part the rule needs could not be read.
    """

    values: Mapping[str, float | None]
    present: Callable[[str], bool]


def _queue_value(kind: AlertType, window: int) -> Callable[[QueueReading], float | None]:
    def failure_ratio(reading: QueueReading) -> float | None:
        failed = reading.failed_in_window.get(window)
        completed = reading.completed_in_window.get(window)
        if failed is None or completed is None or failed + completed == 0:
            return None
        return failed * 100 / (failed + completed)

    readers: dict[AlertType, Callable[[QueueReading], float | None]] = {
        AlertType.BACKLOG: lambda reading: reading.waiting,
        AlertType.LATENCY: lambda reading: reading.oldest_waiting_age_s or 0.0,
        AlertType.FAILURE: lambda reading: reading.failed,
        AlertType.FAILURE_COUNT: lambda reading: reading.failed_in_window.get(window),
        AlertType.FAILURE_RATIO: failure_ratio,
        AlertType.STUCK_JOB: lambda reading: reading.longest_active_s or 0.0,
        AlertType.WORKER_LOST: lambda reading: reading.workers,
    }
    return readers[kind]


_NODE_VALUES: dict[AlertType, Callable[[NodeReading], float | None]] = {
    AlertType.NODE_CPU: lambda node: node.cpu_percent,
    AlertType.NODE_RAM: lambda node: node.ram_percent,
    AlertType.NODE_DISK: lambda node: node.disk_percent,
}

QUEUE_TYPES = frozenset(
    {
        AlertType.BACKLOG,
        AlertType.LATENCY,
        AlertType.FAILURE,
        AlertType.FAILURE_COUNT,
        AlertType.FAILURE_RATIO,
        AlertType.STUCK_JOB,
        AlertType.WORKER_LOST,
    }
)
KNOWN_TYPES = frozenset(AlertType)


def _queues(rule: AlertRule, kind: AlertType, queues: Mapping[str, QueueReading] | None, cache: dict[Any, Any]) -> Any:
    if kind is AlertType.WORKER_LOST and rule.queue is None:
        return None  # handled by the caller: the subject "all"
    if queues is None:
        return None
    key = ("queue", kind, rule.queue, rule.window_minutes)
    if key not in cache:
        value = _queue_value(kind, rule.window_minutes)
        values: dict[str, float | None] = {
            QUEUE_PREFIX + name: value(queues[name]) for name in select(rule.queue, queues)
        }
        if kind is AlertType.WORKER_LOST and rule.queue is not None and not is_glob(rule.queue):
            # Nobody consumes a queue the snapshot does not list: its worker count is 0, not unknown.
            values.setdefault(QUEUE_PREFIX + rule.queue, 0)
        cache[key] = Readings(values, lambda subject: subject.removeprefix(QUEUE_PREFIX) in queues)
    return cache[key]


def _nodes(rule: AlertRule, kind: AlertType, snapshot: Snapshot, cache: dict[Any, Any]) -> Readings | None:
    nodes = snapshot.nodes
    if nodes is None:
        return None
    key = ("node", kind, rule.service)
    if key not in cache:
        values: dict[str, float | None]
        if kind is AlertType.NODE_DOWN:
            live = dict(nodes)
            values = {
                NODE_PREFIX + name: max(0.0, (snapshot.taken_ms - node.last_seen_ms) / 1000)
                for name, node in live.items()
                if _service_matches(rule, node)
            }
        else:
            live = {name: node for name, node in nodes.items() if not node.stale}
            read = _NODE_VALUES[kind]
            values = {NODE_PREFIX + name: read(node) for name, node in live.items() if _service_matches(rule, node)}
        cache[key] = Readings(values, lambda subject: subject.removeprefix(NODE_PREFIX) in live)
    result: Readings = cache[key]
    return result


def _service_matches(rule: AlertRule, node: NodeReading) -> bool:
    return glob_matches(rule.service, node.service)


def _schedules(rule: AlertRule, schedules: Mapping[str, ScheduleReading] | None) -> Readings | None:
    if schedules is None:
        return None
    values: dict[str, float | None] = {}
    for schedule_id, reading in schedules.items():
        if glob_matches(rule.queue, reading.queue):
            values[SCHEDULE_PREFIX + schedule_id] = reading.late_s
    return Readings(values, lambda subject: subject.removeprefix(SCHEDULE_PREFIX) in schedules)


def _counts(prefix: str, counts: Mapping[str, int] | None) -> Readings | None:
    if counts is None:
        return None
    values: dict[str, float | None] = {prefix + name: count for name, count in counts.items()}
    return Readings(values, lambda subject: subject in values)


def readings_for(rule: AlertRule, kind: AlertType, snapshot: Snapshot, cache: dict[Any, Any]) -> Readings | None:
    """The subjects ``rule`` covers and their values; ``None`` when the part it needs was not read."""
    if kind in QUEUE_TYPES:
        if kind is AlertType.WORKER_LOST and rule.queue is None:
            total = snapshot.workers_total
            if total is None:
                return None
            return Readings({SUBJECT_ALL: total}, lambda subject: subject == SUBJECT_ALL)
        result: Readings | None = _queues(rule, kind, snapshot.queues, cache)
        return result
    if kind in _NODE_VALUES or kind is AlertType.NODE_DOWN:
        return _nodes(rule, kind, snapshot, cache)
    if kind is AlertType.SCHEDULE_MISSED:
        return _schedules(rule, snapshot.schedules)
    if kind is AlertType.CHANNEL_FAILING:
        return _counts(CHANNEL_PREFIX, snapshot.channels)
    return _counts(ARCHIVE_PREFIX, snapshot.archive_lag)


def known_subjects(rule: AlertRule, kind: AlertType) -> list[str]:
    """Subjects a rule has whatever the snapshot says: ``all``, or the one queue a plain name names."""
    if kind is AlertType.WORKER_LOST and rule.queue is None:
        return [SUBJECT_ALL]
    if kind in QUEUE_TYPES and rule.queue is not None and not is_glob(rule.queue):
        return [QUEUE_PREFIX + rule.queue]
    return []


def labels_of(rule: AlertRule, subject: str, snapshot: Snapshot) -> AlertLabels:
    """The labels silences match against for one subject of ``rule``."""
    severity = str(getattr(rule.severity, "value", rule.severity))
    queue = service = None
    if subject.startswith(QUEUE_PREFIX):
        queue = subject.removeprefix(QUEUE_PREFIX)
    elif subject.startswith(NODE_PREFIX):
        service = subject.removeprefix(NODE_PREFIX).rpartition("/")[0]
    elif subject.startswith(SCHEDULE_PREFIX) and snapshot.schedules is not None:
        reading = snapshot.schedules.get(subject.removeprefix(SCHEDULE_PREFIX))
        queue = None if reading is None else reading.queue
    return AlertLabels(rule=rule.id, severity=severity, queue=queue, service=service)
