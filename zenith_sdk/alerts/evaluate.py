"""The pure alert evaluator: rules, a snapshot, the stored states and the clock in; new states, transitions and
notifications out.

No I/O and no clock reads: the same arguments always give the same result, ordered by rule id
then subject. The state machine and the notification rules are those of PROTOCOL section 10.5.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from zenith_protocol import (
    AlertRule,
    AlertState,
    AlertStatus,
    AlertType,
    MuteWindow,
    Notification,
    NotificationKind,
    NotificationSubject,
    Silence,
    Transition,
    notification_id,
)
from zenith_protocol.alerts import FIRES_BELOW_THRESHOLD
from zenith_sdk.alerts._subjects import KNOWN_TYPES, Readings, known_subjects, labels_of, readings_for
from zenith_sdk.alerts.matching import (
    INHIBITED_PREFIX,
    NODE_RESOURCE_TYPES,
    active_mutes,
    inhibitors,
    silence_active,
    silenced_by,
)

__all__ = [
    "Evaluation",
    "NodeReading",
    "QueueReading",
    "ScheduleReading",
    "Snapshot",
    "StateKey",
    "evaluate",
]

StateKey = tuple[str, str]
"""(rule id, subject) of one alert state."""


@dataclass(frozen=True, kw_only=True)
class QueueReading:
    """One queue as the snapshot saw it."""

    name: str
    waiting: int = 0
    failed: int = 0
    oldest_waiting_age_s: float | None = None
    failed_in_window: Mapping[int, int] = field(default_factory=dict)
    """Window in minutes -> jobs failed (retried or dead-lettered) in it."""
    completed_in_window: Mapping[int, int] = field(default_factory=dict)
    """Window in minutes -> jobs completed in it."""
    longest_active_s: float | None = None
    workers: int = 0


@dataclass(frozen=True, kw_only=True)
class NodeReading:
    """One pulse node; ``stale`` ones (no report for too long) count only for ``node_down``."""

    service: str
    node_id: str
    cpu_percent: float | None = None
    ram_percent: float | None = None
    disk_percent: float | None = None
    """Used percent of the fullest reported path."""
    last_seen_ms: int
    stale: bool = False


@dataclass(frozen=True, kw_only=True)
class ScheduleReading:
    """One schedule: how late its last run is (0 when on time)."""

    id: str
    queue: str | None = None
    late_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """Everything rules read, taken at ``taken_ms``; a part that could not be read is ``None``."""

    taken_ms: int
    queues: Mapping[str, QueueReading] | None = None
    nodes: Mapping[str, NodeReading] | None = None
    """Keyed ``"<service>/<nodeId>"``."""
    schedules: Mapping[str, ScheduleReading] | None = None
    channels: Mapping[str, int] | None = None
    """Channel name -> consecutive delivery failures."""
    archive_lag: Mapping[str, int] | None = None
    """Consumer group of the events stream -> entries not yet delivered to it."""
    workers_total: int | None = None


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation decided.

    ``states`` is the whole new map; a state whose ``seq`` moved is one to write, and exactly one
    transition (with that new ``seq``) says why. ``problems`` names inputs that were ignored.
    """

    states: dict[StateKey, AlertState]
    transitions: list[Transition]
    notifications: list[Notification]
    problems: list[str] = field(default_factory=list)

    def changed(self) -> list[tuple[StateKey, int, AlertState]]:
        """(key, seq the state had when read, new state) of every state to write, in transition order."""
        return [((t.rule_id, t.subject), t.seq - 1, self.states[(t.rule_id, t.subject)]) for t in self.transitions]


class _Seen(Enum):
    HOLDS = "holds"
    CLEAR = "clear"
    NO_DATA = "no_data"
    ERROR = "error"


@dataclass(frozen=True)
class _Step:
    rule: AlertRule
    kind: AlertType
    subject: str
    old: AlertState | None
    new: AlertState
    value: float | None


_ACTIVE = frozenset({AlertStatus.PENDING, AlertStatus.FIRING})
_CLEARS_TO_INACTIVE = frozenset({AlertStatus.PENDING, AlertStatus.NO_DATA, AlertStatus.ERROR})
_KIND_ORDER = {kind: index for index, kind in enumerate(NotificationKind)}
_IDENTITY = (
    "state",
    "since_ms",
    "active_since_ms",
    "recovering_since_ms",
    "notified",
    "last_notified_ms",
    "silenced_by",
)


def evaluate(
    rules: Iterable[AlertRule],
    snapshot: Snapshot,
    states: Mapping[StateKey, AlertState],
    silences: Iterable[Silence],
    mutes: Iterable[MuteWindow],
    now_ms: int,
) -> Evaluation:
    """Advance every (rule, subject) state by one evaluation at ``now_ms``.

    Rules that are disabled, of an unknown type, or repeat an earlier rule's id are skipped and
    their states left as they are.
    """
    by_rule: dict[str, list[str]] = defaultdict(list)
    for rule_id, subject in states:
        by_rule[rule_id].append(subject)
    cache: dict[Any, Any] = {}
    steps: list[_Step] = []
    for rule in _evaluable(rules):
        kind = AlertType(rule.type)
        readings = readings_for(rule, kind, snapshot, cache)
        for subject, seen, value in _observations(rule, kind, readings, by_rule.get(rule.id, ())):
            old = states.get((rule.id, subject))
            new = _advance(old, seen, value, rule, now_ms)
            if new is not None:
                steps.append(_Step(rule, kind, subject, old, new, value))
    return _notify(steps, snapshot, states, silences, mutes, now_ms)


def _evaluable(rules: Iterable[AlertRule]) -> list[AlertRule]:
    seen: dict[str, AlertRule] = {}
    for rule in rules:
        if rule.id not in seen:
            seen[rule.id] = rule
    return sorted(
        (rule for rule in seen.values() if rule.enabled and rule.type in KNOWN_TYPES), key=lambda rule: rule.id
    )


def _observations(
    rule: AlertRule, kind: AlertType, readings: Readings | None, stored: Sequence[str]
) -> list[tuple[str, _Seen, float | None]]:
    if readings is None:
        subjects = sorted({*stored, *known_subjects(rule, kind)})
        return [(subject, _Seen.ERROR, None) for subject in subjects]
    values, threshold = readings.values, rule.threshold
    below = kind in FIRES_BELOW_THRESHOLD
    hot = {
        subject: value
        for subject, value in values.items()
        if value is not None and (value < threshold if below else value >= threshold)
    }
    out: dict[str, tuple[_Seen, float | None]] = {subject: (_Seen.HOLDS, value) for subject, value in hot.items()}
    for subject in stored:
        if subject in out:
            continue
        if subject in values:
            value = values[subject]
            out[subject] = (_Seen.NO_DATA, None) if value is None else (_Seen.CLEAR, value)
        elif readings.present(subject):
            out[subject] = (_Seen.CLEAR, None)  # still there, but the rule no longer covers it
        else:
            out[subject] = (_Seen.NO_DATA, None)
    return [(subject, seen, value) for subject, (seen, value) in sorted(out.items())]


def _enter(old: AlertState | None, state: AlertStatus, now_ms: int, active_ms: int | None = None) -> AlertState:
    """``old`` moved to ``state`` at ``now_ms``; seq, value and silence are settled later."""
    return AlertState.model_construct(
        state=state,
        seq=0 if old is None else old.seq,
        since_ms=now_ms,
        active_since_ms=active_ms,
        notified=False if old is None or state is AlertStatus.FIRING else old.notified,
        last_notified_ms=None if old is None else old.last_notified_ms,
    )


def _advance(
    old: AlertState | None, seen: _Seen, value: float | None, rule: AlertRule, now_ms: int
) -> AlertState | None:
    """The state machine: ``None`` stands for a subject with no stored state (inactive)."""
    status = None if old is None else old.state
    if seen is _Seen.HOLDS:
        return _holds(old, rule, now_ms)
    if old is None:
        return _enter(None, AlertStatus.ERROR, now_ms) if seen is _Seen.ERROR else None
    if seen is _Seen.NO_DATA:
        return old if status is AlertStatus.NO_DATA else _enter(old, AlertStatus.NO_DATA, now_ms)
    if seen is _Seen.ERROR:
        return old if status is AlertStatus.ERROR else _enter(old, AlertStatus.ERROR, now_ms)
    if status in _CLEARS_TO_INACTIVE:
        return _enter(old, AlertStatus.INACTIVE, now_ms)
    if status is not AlertStatus.FIRING:
        return old
    keep_ms = rule.keep_firing_for_s * 1000
    if keep_ms > 0:
        if old.recovering_since_ms is None:
            return old.model_copy(update={"recovering_since_ms": now_ms})
        if now_ms - old.recovering_since_ms < keep_ms:
            return old
    return _enter(old, AlertStatus.RESOLVED, now_ms)


def _holds(old: AlertState | None, rule: AlertRule, now_ms: int) -> AlertState:
    status = None if old is None else old.state
    if old is None or status not in _ACTIVE:
        if rule.for_s > 0:
            return _enter(old, AlertStatus.PENDING, now_ms, active_ms=now_ms)
        return _enter(old, AlertStatus.FIRING, now_ms, active_ms=now_ms)
    if status is AlertStatus.PENDING:
        active_ms = old.since_ms if old.active_since_ms is None else old.active_since_ms
        if now_ms - active_ms >= rule.for_s * 1000:
            return _enter(old, AlertStatus.FIRING, now_ms, active_ms=active_ms)
        return old
    if old.recovering_since_ms is not None:
        return old.model_copy(update={"recovering_since_ms": None})
    return old


def _notify(
    steps: list[_Step],
    snapshot: Snapshot,
    states: Mapping[StateKey, AlertState],
    silences: Iterable[Silence],
    mutes: Iterable[MuteWindow],
    now_ms: int,
) -> Evaluation:
    """Settle silences, notifications and seqs of the stepped states."""
    live_silences = sorted((item for item in silences if silence_active(item, now_ms)), key=lambda item: item.id)
    live_mutes, problems = active_mutes(mutes, now_ms)
    firing_nodes = inhibitors(
        {(step.rule.id, step.subject): step.new for step in steps if step.kind is AlertType.NODE_DOWN}
    )
    out = dict(states)
    transitions: list[Transition] = []
    grouped: dict[tuple[str, NotificationKind], list[NotificationSubject]] = defaultdict(list)
    rules: dict[str, AlertRule] = {}
    for step in steps:
        was_firing = step.old is not None and step.old.state is AlertStatus.FIRING
        if step.new is step.old and not was_firing:
            continue  # nothing moved, and only a firing alert can change by silences or repeats
        quiet = step.new.silenced_by
        if was_firing or step.new.state is AlertStatus.FIRING:
            inhibitor = firing_nodes.get(step.subject) if step.kind in NODE_RESOURCE_TYPES else None
            if live_silences or live_mutes:
                labels = labels_of(step.rule, step.subject, snapshot)
                quiet = silenced_by(labels, live_silences, live_mutes, now_ms, inhibitor=inhibitor)
            else:
                quiet = None if inhibitor is None else INHIBITED_PREFIX + inhibitor
        final, kind = _settle(step, quiet, now_ms)
        if final is step.old:
            continue
        key = (step.rule.id, step.subject)
        out[key] = final
        transitions.append(_transition(step, final, kind, now_ms))
        if kind is not None:
            rules[step.rule.id] = step.rule
            grouped[(step.rule.id, kind)].append(_subject_entry(step, final, kind, now_ms))
    notifications = [
        _notification(rules[rule_id], kind, subjects, now_ms)
        for (rule_id, kind), subjects in sorted(grouped.items(), key=lambda item: (item[0][0], _KIND_ORDER[item[0][1]]))
    ]
    return Evaluation(out, transitions, notifications, problems)


def _settle(step: _Step, quiet: str | None, now_ms: int) -> tuple[AlertState, NotificationKind | None]:
    """The state to store (``step.old`` itself when nothing changed) and the notification it causes."""
    new, old = step.new, step.old
    notified, last_ms = new.notified, new.last_notified_ms
    kind: NotificationKind | None = None
    if new.state is AlertStatus.FIRING and quiet is None:
        repeat_ms = step.rule.repeat_interval_ms
        if not notified:
            kind, notified, last_ms = NotificationKind.FIRING, True, now_ms
        elif repeat_ms is not None and (last_ms is None or now_ms - last_ms >= repeat_ms):
            kind, last_ms = NotificationKind.REPEAT, now_ms
    elif old is not None and old.state is AlertStatus.FIRING and quiet is None and old.notified:
        if new.state is AlertStatus.RESOLVED:
            kind = NotificationKind.RESOLVED
        elif new.state is AlertStatus.NO_DATA:
            kind = NotificationKind.NO_DATA
    if new is old and kind is None and quiet == old.silenced_by:
        return old, None
    candidate = new.model_copy(update={"notified": notified, "last_notified_ms": last_ms, "silenced_by": quiet})
    if old is not None and all(getattr(candidate, name) == getattr(old, name) for name in _IDENTITY):
        return old, None
    seq = 1 if old is None else old.seq + 1
    value = None if step.value is None else float(step.value)
    final = candidate.model_copy(update={"seq": seq, "value": value, "threshold": step.rule.threshold})
    return final, kind


def _transition(step: _Step, final: AlertState, kind: NotificationKind | None, now_ms: int) -> Transition:
    return Transition(
        rule_id=step.rule.id,
        subject=step.subject,
        from_state=AlertStatus.INACTIVE if step.old is None else step.old.state,
        to_state=final.state,
        seq=final.seq,
        at_ms=now_ms,
        value=step.value,
        threshold=step.rule.threshold,
        kind=kind,
        silenced_by=final.silenced_by,
    )


def _subject_entry(step: _Step, final: AlertState, kind: NotificationKind, now_ms: int) -> NotificationSubject:
    firing = kind in (NotificationKind.FIRING, NotificationKind.REPEAT)
    episode = final if firing or step.old is None else step.old
    duration_s = None
    if kind is NotificationKind.RESOLVED and step.old is not None:
        duration_s = max(0, now_ms - step.old.since_ms) / 1000
    return NotificationSubject(
        subject=step.subject,
        value=step.value,
        since_ms=episode.active_since_ms,
        duration_s=duration_s,
        seq=final.seq,
    )


def _notification(
    rule: AlertRule, kind: NotificationKind, subjects: list[NotificationSubject], now_ms: int
) -> Notification:
    first = subjects[0]
    return Notification(
        id=notification_id(rule.id, first.subject, first.seq or 0),
        rule_id=rule.id,
        rule_name=rule.name,
        type=rule.type,
        kind=kind,
        severity=rule.severity,
        at_ms=now_ms,
        threshold=rule.threshold,
        runbook_url=rule.runbook_url,
        description=rule.description,
        channels=list(rule.channels or ()),
        subjects=subjects,
    )
