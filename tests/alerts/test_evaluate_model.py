"""The evaluator against a reference model of the state machine (PROTOCOL 10.5), over random histories.

The model below is written from the protocol's description, one explicit branch per rule of
the text; it shares no code with the evaluator. Hypothesis drives both with the same random
sequences of condition values, clock advances, silences, mute windows, vanished queues and
unreadable snapshots, and every evaluation must give the same states, the same transitions and
the same grouped notifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from zenith_protocol import AlertRule, AlertState, MuteWindow, Silence, SilenceMatchers
from zenith_sdk.alerts import QueueReading, Snapshot, evaluate

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a multiple of ten minutes
SUBJECTS = ("q1", "q2")
THRESHOLD = 100
MUTE = MuteWindow(id="m-every-10", cron="*/10 * * * *", duration_minutes=3)
"""Active during the first three minutes of every ten (UTC)."""

CONDITIONS = st.sampled_from(["holds", "holds", "clear", "clear", "absent"])
ADVANCE_MS = st.one_of(
    st.sampled_from([0, 15_000, 15_000, 30_000, 45_000, 45_000, 60_000, 90_000, 120_000, 180_000]),
    st.integers(min_value=0, max_value=400_000),
)
"""Mostly steps that land exactly on the rule's for, keep-firing and repeat boundaries."""
UNREADABLE = st.integers(0, 7).map(lambda draw: draw == 0)
SILENCE_MATCHERS = st.sampled_from(
    [
        {"queue": "q1"},  # one subject
        {"rule": "r*"},  # every subject of the rule
        {"severity": "critical"},  # the rule is a warning: matches nothing
        {"queue": "q[12]", "rule": "r"},
    ]
)


@dataclass
class ModelAlert:
    """One subject's alert as the protocol text describes it; ``recorded`` False = no stored state."""

    recorded: bool = False
    state: str = "inactive"
    seq: int = 0
    since: int | None = None
    active_since: int | None = None
    recovering_since: int | None = None
    notified: bool = False
    last_notified: int | None = None
    silenced_by: str | None = None


@dataclass
class ModelRule:
    for_ms: int
    keep_ms: int
    repeat_ms: int | None


@dataclass
class ModelSilence:
    id: str
    matchers: dict[str, str]
    starts_at: int
    ends_at: int


@dataclass
class ModelOutcome:
    transitions: list[tuple[str, str, str, int, str | None, str | None]] = field(default_factory=list)
    notifications: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)


def _glob(pattern: str, value: str) -> bool:
    """The three glob forms this test uses: a literal, ``prefix*`` and ``q[12]``."""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern == "q[12]":
        return value in ("q1", "q2")
    return pattern == value


def _silence_matches(silence: ModelSilence, subject: str) -> bool:
    labels = {"rule": "r", "queue": subject, "service": "", "severity": "warning"}
    return all(_glob(pattern, labels[name]) for name, pattern in silence.matchers.items())


def _quiet_by(subject: str, silences: list[ModelSilence], mute_on: bool, now: int) -> str | None:
    """The lowest matching active silence id, else the mute window if it is active now."""
    for silence in sorted(silences, key=lambda item: item.id):
        if silence.starts_at <= now < silence.ends_at and _silence_matches(silence, subject):
            return silence.id
    if mute_on and (now - START_MS) % 600_000 < 180_000:
        return MUTE.id
    return None


def _moved(alert: ModelAlert, state: str, now: int, active_since: int | None = None) -> ModelAlert:
    """Enter ``state`` at ``now``: a new since, no recovery, no silence yet; notified resets on firing."""
    return replace(
        alert,
        recorded=True,
        state=state,
        since=now,
        active_since=active_since,
        recovering_since=None,
        notified=False if state == "firing" else alert.notified,
        silenced_by=None,
    )


def model_machine(alert: ModelAlert, seen: str, rule: ModelRule, now: int) -> ModelAlert:
    """The state machine of PROTOCOL 10.5; ``seen`` is holds, clear, no_data or error."""
    was = alert.state if alert.recorded else None
    if seen == "holds":
        return _model_holds(alert, was, rule, now)
    if seen == "clear":
        return _model_clear(alert, was, rule, now)
    if seen == "no_data":
        if was is None or was == "no_data":
            return alert
        return _moved(alert, "no_data", now)
    # error: a rule over a queue glob cannot list its subjects without the queues, so only stored ones move
    if was is None or was == "error":
        return alert
    return _moved(alert, "error", now)


def _model_holds(alert: ModelAlert, was: str | None, rule: ModelRule, now: int) -> ModelAlert:
    if was in (None, "inactive", "resolved", "no_data", "error"):
        if rule.for_ms > 0:
            return _moved(alert, "pending", now, active_since=now)
        return _moved(alert, "firing", now, active_since=now)
    if was == "pending":
        assert alert.active_since is not None
        if now - alert.active_since >= rule.for_ms:
            return _moved(alert, "firing", now, active_since=alert.active_since)
        return alert
    return replace(alert, recovering_since=None)  # firing goes on


def _model_clear(alert: ModelAlert, was: str | None, rule: ModelRule, now: int) -> ModelAlert:
    if was is None or was in ("inactive", "resolved"):
        return alert
    if was in ("pending", "no_data", "error"):
        return _moved(alert, "inactive", now)
    # firing
    if rule.keep_ms > 0 and alert.recovering_since is None:
        return replace(alert, recovering_since=now)
    if rule.keep_ms > 0 and alert.recovering_since is not None and now - alert.recovering_since < rule.keep_ms:
        return alert
    return _moved(alert, "resolved", now)


def model_notify(
    before: ModelAlert, after: ModelAlert, quiet: str | None, rule: ModelRule, now: int
) -> tuple[ModelAlert, str | None]:
    """Silence, notification and seq of one subject after the machine moved it from ``before`` to ``after``."""
    was_firing = before.recorded and before.state == "firing"
    if after.state == "firing" or was_firing:
        after = replace(after, silenced_by=quiet)
    kind = None
    if after.state == "firing" and after.silenced_by is None:
        if not after.notified:
            kind = "firing"
            after = replace(after, notified=True, last_notified=now)
        elif rule.repeat_ms is not None and after.last_notified is not None:
            if now - after.last_notified >= rule.repeat_ms:
                kind = "repeat"
                after = replace(after, last_notified=now)
    elif was_firing and after.silenced_by is None and before.notified:
        kind = {"resolved": "resolved", "no_data": "no_data"}.get(after.state)
    fields = ("recorded", "state", "since", "active_since", "recovering_since", "notified", "last_notified")
    unchanged = all(getattr(before, name) == getattr(after, name) for name in fields)
    if unchanged and before.silenced_by == after.silenced_by:
        return before, None
    return replace(after, seq=before.seq + 1), kind


class EvaluatorMatchesModel(RuleBasedStateMachine):
    """Random histories of one rule over two queues."""

    @initialize(
        for_s=st.sampled_from([0, 30, 60]),
        keep_s=st.sampled_from([0, 45, 45]),
        cooldown=st.sampled_from([0, 1, 2]),
        repeat=st.sampled_from([None, 1.5]),
    )
    def setup(self, for_s: int, keep_s: int, cooldown: int, repeat: float | None) -> None:
        self.rule = AlertRule(
            id="r",
            name="Backlog",
            type="backlog",
            threshold=THRESHOLD,
            queue="q?",
            cooldown_minutes=cooldown,
            repeat_minutes=repeat,
            for_s=for_s,
            keep_firing_for_s=keep_s,
        )
        minutes = repeat if repeat is not None else cooldown
        self.model_rule = ModelRule(for_s * 1000, keep_s * 1000, round(minutes * 60_000) if minutes else None)
        self.now = START_MS
        self.states: dict[tuple[str, str], AlertState] = {}
        self.model: dict[str, ModelAlert] = {subject: ModelAlert() for subject in SUBJECTS}
        self.silences: list[ModelSilence] = []
        self.mute_on = False

    @rule(matchers=SILENCE_MATCHERS, starts_in=st.integers(-60_000, 60_000), lasts=st.integers(1, 600_000))
    def add_silence(self, matchers: dict[str, str], starts_in: int, lasts: int) -> None:
        start = self.now + starts_in
        self.silences.append(ModelSilence(f"s{len(self.silences):02d}", matchers, start, start + lasts))

    @rule()
    def drop_silences(self) -> None:
        self.silences = []

    @rule()
    def toggle_mute(self) -> None:
        self.mute_on = not self.mute_on

    @rule(advance=ADVANCE_MS, q1=CONDITIONS, q2=CONDITIONS, unreadable=UNREADABLE)
    def tick(self, advance: int, q1: str, q2: str, unreadable: bool) -> None:
        self.now += advance
        conditions = {"q1": q1, "q2": q2}
        queues = {
            name: QueueReading(name=name, waiting=THRESHOLD + 5 if condition == "holds" else THRESHOLD - 1)
            for name, condition in conditions.items()
            if condition != "absent"
        }
        snapshot = Snapshot(taken_ms=self.now, queues=None if unreadable else queues)
        silences = [
            Silence(
                id=item.id,
                matchers=SilenceMatchers.model_validate(item.matchers),
                starts_at_ms=item.starts_at,
                ends_at_ms=item.ends_at,
            )
            for item in self.silences
        ]
        result = evaluate([self.rule], snapshot, self.states, silences, [MUTE] if self.mute_on else [], self.now)

        expected = self._model_tick(conditions, unreadable)
        got_transitions = [
            (t.subject, t.from_state.value, t.to_state.value, t.seq, t.kind.value if t.kind else None, t.silenced_by)
            for t in result.transitions
        ]
        assert got_transitions == expected.transitions
        got_notifications = [(n.kind.value, [(s.subject, s.seq) for s in n.subjects]) for n in result.notifications]
        assert got_notifications == expected.notifications
        for notification in result.notifications:
            first = notification.subjects[0]
            assert notification.id == f"r:{first.subject}:{first.seq}"
        self.states = result.states

    def _model_tick(self, conditions: dict[str, str], unreadable: bool) -> ModelOutcome:
        outcome = ModelOutcome()
        grouped: dict[str, list[tuple[str, int]]] = {}
        for name in SUBJECTS:
            subject = f"queue:{name}"
            if unreadable:
                seen = "error"
            else:
                seen = {"holds": "holds", "clear": "clear", "absent": "no_data"}[conditions[name]]
            before = self.model[name]
            moved = model_machine(before, seen, self.model_rule, self.now)
            quiet = _quiet_by(name, self.silences, self.mute_on, self.now)
            after, kind = model_notify(before, moved, quiet, self.model_rule, self.now)
            if after is not before:
                was = before.state if before.recorded else "inactive"
                outcome.transitions.append((subject, was, after.state, after.seq, kind, after.silenced_by))
                if kind is not None:
                    grouped.setdefault(kind, []).append((subject, after.seq))
            self.model[name] = after
        order = ["firing", "repeat", "resolved", "no_data"]
        outcome.notifications = [(kind, grouped[kind]) for kind in order if kind in grouped]
        return outcome

    @invariant()
    def stored_states_match_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        for name, alert in self.model.items():
            stored = self.states.get(("r", f"queue:{name}"))
            if not alert.recorded:
                assert stored is None
                continue
            assert stored is not None
            got = (
                stored.state.value,
                stored.seq,
                stored.since_ms,
                stored.active_since_ms,
                stored.recovering_since_ms,
                stored.notified,
                stored.last_notified_ms,
                stored.silenced_by,
            )
            want = (
                alert.state,
                alert.seq,
                alert.since,
                alert.active_since,
                alert.recovering_since,
                alert.notified,
                alert.last_notified,
                alert.silenced_by,
            )
            assert got == want


EvaluatorMatchesModel.TestCase.settings = settings(max_examples=300, stateful_step_count=50)
TestEvaluatorMatchesModel = EvaluatorMatchesModel.TestCase
