"""The alert runtime's Redis state: rule states, the atomic apply of an evaluation, history, channel health.

States live in one HASH (field ``<ruleId>\\x1f<subject>``, value the state JSON). An evaluator
reads them with :func:`read_states`, evaluates, and hands the result to :func:`apply_evaluation`,
which runs the ``alert_apply`` script: a state is written only if the hash still holds the exact
bytes the evaluator read, so when several evaluators race, exactly one wins each change; each
notification is appended to the outbox with the subjects whose states it won (its id is that of
its first such subject), and each transition won goes to the history list and the events stream.
Rules and channel settings are in ``_settings``; silences and mute windows in ``_silences``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from zenith_protocol import (
    AlertRule,
    AlertState,
    ChannelHealth,
    EventType,
    JobEvent,
    KeySpace,
    Notification,
    ProtocolError,
    Transition,
    _json,
    decode_alert_channel_health,
    decode_alert_state,
    decode_alert_transition,
    encode_alert_channel_health,
    encode_alert_notification,
    encode_alert_state,
    encode_alert_transition,
    encode_event,
)
from zenith_protocol.alerts import notification_id
from zenith_protocol.events import EVENTS_STREAM_MAXLEN
from zenith_sdk._wire import text_of
from zenith_sdk.alerts.evaluate import Evaluation
from zenith_sdk.scripts import ALERT_APPLY, ScriptArg, scripts_for

__all__ = [
    "FIELD_SEPARATOR",
    "HISTORY_CAP",
    "OUTBOX_FIELD",
    "OUTBOX_MAXLEN",
    "Applied",
    "StoredStates",
    "apply_evaluation",
    "channel_health",
    "read_history",
    "read_states",
    "record_delivery",
    "split_state_field",
    "state_field",
    "states_from",
]

logger = logging.getLogger(__name__)

FIELD_SEPARATOR = "\x1f"
"""Between the rule id and the subject in a state's hash field (neither may contain it)."""
OUTBOX_MAXLEN = 10_000
"""Approximate cap (``XADD ... MAXLEN ~``) of the outbox stream."""
OUTBOX_FIELD = "notification"
"""The single field of an outbox entry: the notification JSON."""
HISTORY_CAP = 1000
"""Transitions kept in the history list."""
_HEALTH_WATCH_RETRIES = 5
_ID_MARK = "\x00zenith-notification-id\x00"
_SUBJECTS = '"subjects":[]'

StateKey = tuple[str, str]
"""(rule id, subject)."""


def state_field(rule_id: str, subject: str) -> str:
    """The hash field of the state of ``rule_id`` for ``subject``."""
    if FIELD_SEPARATOR in rule_id or FIELD_SEPARATOR in subject:
        raise ValueError(f"rule ids and subjects may not contain U+001F, got {rule_id!r} / {subject!r}")
    return f"{rule_id}{FIELD_SEPARATOR}{subject}"


def split_state_field(field_name: str) -> StateKey | None:
    """(rule id, subject) of a hash field, or None when it is not one this package writes."""
    rule_id, sep, subject = field_name.partition(FIELD_SEPARATOR)
    return (rule_id, subject) if sep and rule_id and subject else None


@dataclass(frozen=True)
class StoredStates:
    """The states read from Redis, with the exact bytes of each (what the compare-and-set compares).

    ``invalid`` maps the hash fields that do not decode to why; they are left alone by applies.
    """

    states: dict[StateKey, AlertState] = field(default_factory=dict)
    raw: dict[StateKey, bytes] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)


def read_states(client: redis.Redis, *, keyspace: KeySpace | None = None) -> StoredStates:
    """Every alert state, in one round trip (HGETALL)."""
    return states_from(client.hgetall((keyspace or KeySpace()).alerts_states()))


def states_from(raw_hash: Mapping[Any, Any]) -> StoredStates:
    """The states of a states hash as HGETALL returned it (see :func:`read_states`)."""
    stored = StoredStates()
    for raw_field, raw_value in raw_hash.items():
        name = text_of(raw_field)
        key = split_state_field(name)
        value = raw_value if isinstance(raw_value, bytes) else str(raw_value).encode()
        if key is None:
            stored.invalid[name] = "not a <ruleId>\\x1f<subject> field"
            continue
        try:
            stored.states[key] = decode_alert_state(value)
        except ProtocolError as exc:
            stored.invalid[name] = exc.reason
            continue
        stored.raw[key] = value
    return stored


@dataclass(frozen=True)
class Applied:
    """What one apply wrote: states won and lost to another evaluator, notifications appended."""

    states_written: int
    states_lost: int
    notifications: int


class _Call:
    """The ``alert_apply`` arguments of one evaluation."""

    def __init__(self) -> None:
        self.index: dict[StateKey, int] = {}
        self.states: list[ScriptArg] = []
        self.transitions: list[ScriptArg] = []
        self.notifications: list[ScriptArg] = []
        self.counts = [0, 0, 0]

    def state(self, key: StateKey, expected: bytes, new: str) -> None:
        self.index[key] = len(self.index) + 1
        self.states += [state_field(*key), expected, new]
        self.counts[0] += 1

    def transition(self, transition: Transition, event: str) -> None:
        index = self.index.get((transition.rule_id, transition.subject))
        if index is None:
            logger.error("alert transition rule=%s subject=%s has no state change; not recorded", *_key(transition))
            return
        self.transitions += [index, encode_alert_transition(transition), event]
        self.counts[1] += 1

    def notification(self, notification: Notification) -> None:
        head, middle, tail = _pieces(notification)
        subjects: list[ScriptArg] = []
        for subject in notification.subjects:
            index = self.index.get((notification.rule_id, subject.subject))
            if index is None:
                logger.error(
                    "alert notification id=%s: subject %s has no state change; left out",
                    notification.id,
                    subject.subject,
                )
                continue
            candidate = (
                notification_id(notification.rule_id, subject.subject, subject.seq)
                if subject.seq is not None
                else notification.id
            )
            subjects += [
                index,
                _json.dumps(candidate)[1:-1],
                _json.dumps(subject.model_dump(mode="json", by_alias=True, exclude_none=True)),
            ]
        if subjects:
            self.notifications += [len(subjects) // 3, head, middle, tail, *subjects]
            self.counts[2] += 1


def _key(transition: Transition) -> StateKey:
    return transition.rule_id, transition.subject


def _pieces(notification: Notification) -> tuple[str, str, str]:
    """The notification's JSON cut around its id's text and its subjects: head, middle, tail."""
    text = encode_alert_notification(notification.model_copy(update={"id": _ID_MARK, "subjects": []}))
    marked = _json.dumps(_ID_MARK)[1:-1]
    head, _, rest = text.partition(marked)
    at = rest.find(_SUBJECTS)
    if at < 0 or rest.find(_SUBJECTS, at + 1) >= 0:
        raise ValueError(f"notification {notification.id}: cannot place its subjects in {text!r}")
    cut = at + len(_SUBJECTS) - 1
    return head, rest[:cut], rest[cut:]


def alert_event(transition: Transition, severity: str | None) -> JobEvent:
    """The ``alert`` lifecycle event of ``transition`` (``queue`` is the subject's queue, else empty)."""
    kind, _, name = transition.subject.partition(":")
    return JobEvent(
        type=EventType.ALERT,
        queue=name if kind == "queue" else "",
        timestamp=transition.at_ms,
        rule_id=transition.rule_id,
        subject=transition.subject,
        from_state=_text(transition.from_state),
        to_state=_text(transition.to_state),
        seq=transition.seq,
        value=transition.value,
        threshold=transition.threshold,
        kind=_text(transition.kind),
        severity=severity,
        silenced_by=transition.silenced_by,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def apply_evaluation(
    client: redis.Redis,
    read: StoredStates,
    evaluation: Evaluation,
    *,
    keyspace: KeySpace | None = None,
    rules: Sequence[AlertRule] = (),
    outbox_maxlen: int = OUTBOX_MAXLEN,
    history_cap: int = HISTORY_CAP,
    events: bool = True,
) -> Applied:
    """Write ``evaluation`` (made from the states ``read``) as one compare-and-set.

    Only states that changed are sent; a state the evaluation dropped is deleted. ``rules`` give
    the severity written in the ``alert`` events; ``events=False`` writes none.
    """
    space = keyspace or KeySpace()
    call = _Call()
    new_states: Mapping[StateKey, AlertState] = evaluation.states
    for key, state in sorted(new_states.items()):
        if read.states.get(key) != state:
            call.state(key, read.raw.get(key, b""), encode_alert_state(state))
    for key in sorted(set(read.states) - set(new_states)):
        call.state(key, read.raw[key], "")
    severities = {rule.id: _text(rule.severity) for rule in rules}
    for transition in evaluation.transitions:
        event = encode_event(alert_event(transition, severities.get(transition.rule_id))) if events else ""
        call.transition(transition, event)
    for notification in evaluation.notifications:
        call.notification(notification)
    if not call.index:
        return Applied(0, 0, 0)
    keys = [space.alerts_states(), space.alerts_outbox(), space.alerts_history()]
    if events and not space.cluster_safe:
        keys.append(space.events())
    head: list[ScriptArg] = [outbox_maxlen, history_cap, EVENTS_STREAM_MAXLEN, *call.counts]
    written, notified, left = scripts_for(client).call(
        ALERT_APPLY, keys, [*head, *call.states, *call.transitions, *call.notifications]
    )
    if left:
        # Cluster-safe layout: the events stream is in another slot; append right after.
        pipe = client.pipeline(transaction=False)
        for event in left:
            pipe.xadd(space.events(), {"event": event}, maxlen=EVENTS_STREAM_MAXLEN, approximate=True)
        pipe.execute()
    lost = len(call.index) - int(written)
    if lost:
        logger.debug("alert apply: %d state change(s) already made by another evaluator", lost)
    return Applied(int(written), lost, int(notified))


# -- history -----------------------------------------------------------------------------------------


def read_history(client: redis.Redis, *, keyspace: KeySpace | None = None, limit: int = 100) -> list[Transition]:
    """The latest transitions, newest first (entries that do not decode are skipped)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    found = []
    for raw in client.lrange((keyspace or KeySpace()).alerts_history(), 0, limit - 1):
        try:
            found.append(decode_alert_transition(raw))
        except ProtocolError as exc:
            logger.debug("alert history entry skipped: %s", exc.reason)
    return found


# -- channel health ----------------------------------------------------------------------------------


def channel_health(client: redis.Redis, *, keyspace: KeySpace | None = None) -> dict[str, ChannelHealth]:
    """Delivery health of every channel that was ever used, by name."""
    health = {}
    for name, raw in client.hgetall((keyspace or KeySpace()).alerts_channels()).items():
        try:
            health[text_of(name)] = decode_alert_channel_health(raw)
        except ProtocolError as exc:
            logger.debug("channel health of %s unreadable: %s", text_of(name), exc.reason)
    return health


def record_delivery(
    client: redis.Redis,
    channel: str,
    *,
    ok: bool,
    now_ms: int,
    error: str | None = None,
    keyspace: KeySpace | None = None,
) -> ChannelHealth | None:
    """Record one delivery outcome of ``channel`` (``error`` must be redacted already); returns the new health.

    A read-modify-write under WATCH: should other senders change the same channel's health on
    every one of its tries, this outcome is not recorded (None): health is advisory.
    """
    key = (keyspace or KeySpace()).alerts_channels()
    for _ in range(_HEALTH_WATCH_RETRIES):
        with client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.hget(key, channel)
                current = _health(raw)
                if ok:
                    new = current.model_copy(update={"last_success_ms": now_ms, "consecutive_failures": 0})
                else:
                    failures = current.consecutive_failures + 1
                    new = current.model_copy(update={"last_error": error, "consecutive_failures": failures})
                new = new.model_copy(update={"last_attempt_ms": now_ms})
                pipe.multi()
                pipe.hset(key, channel, encode_alert_channel_health(new))
                pipe.execute()
                return new
            except redis.WatchError:
                continue
    logger.debug("channel=%s health not recorded: other senders kept changing it", channel)
    return None


def _health(raw: bytes | str | None) -> ChannelHealth:
    if raw is None:
        return ChannelHealth()
    try:
        return decode_alert_channel_health(raw)
    except ProtocolError:
        return ChannelHealth()
