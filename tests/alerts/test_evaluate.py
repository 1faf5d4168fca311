"""The evaluator rule type by rule type, and the behaviours people notice: repeats, flapping, silences,
inhibition and grouping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from zenith_protocol import (
    AlertRule,
    AlertState,
    AlertStatus,
    MuteWindow,
    Notification,
    NotificationKind,
    Silence,
    SilenceMatchers,
    decode_alert_notification,
    decode_alert_state,
    decode_alert_transition,
    encode_alert_notification,
    encode_alert_state,
    encode_alert_transition,
)
from zenith_sdk.alerts import (
    Evaluation,
    NodeReading,
    QueueReading,
    ScheduleReading,
    Snapshot,
    StateKey,
    evaluate,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000


def make_rule(rule_type: str = "backlog", threshold: float = 10, **fields: Any) -> AlertRule:
    return AlertRule.model_validate({"id": "r", "name": "Rule", "type": rule_type, "threshold": threshold, **fields})


def queues(**readings: int | QueueReading) -> dict[str, QueueReading]:
    """Queue readings; an int is the number of waiting jobs."""
    return {
        name: value if isinstance(value, QueueReading) else QueueReading(name=name, waiting=value)
        for name, value in readings.items()
    }


def node(key: str, *, stale: bool = False, last_seen_ms: int = T0, **values: float) -> NodeReading:
    service, _, node_id = key.partition("/")
    return NodeReading(service=service, node_id=node_id, last_seen_ms=last_seen_ms, stale=stale, **values)


def run(
    rules: Sequence[AlertRule],
    snapshot: Snapshot,
    states: Mapping[StateKey, AlertState] | None = None,
    *,
    now_ms: int = T0,
    silences: Iterable[Silence] = (),
    mutes: Iterable[MuteWindow] = (),
) -> Evaluation:
    return evaluate(rules, snapshot, dict(states or {}), list(silences), list(mutes), now_ms)


def firing_values(result: Evaluation) -> dict[str, float | None]:
    return {subject: state.value for (_, subject), state in result.states.items() if state.state is AlertStatus.FIRING}


class Clock:
    """Runs one rule set evaluation after evaluation, keeping the states between them."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        self.rules = list(rules)
        self.now = T0
        self.states: dict[StateKey, AlertState] = {}
        self.sent: list[Notification] = []

    def tick(self, advance_ms: int, snapshot_queues: Mapping[str, QueueReading] | None, **options: Any) -> Evaluation:
        self.now += advance_ms
        snapshot = Snapshot(taken_ms=self.now, queues=snapshot_queues, workers_total=1)
        result = run(self.rules, snapshot, self.states, now_ms=self.now, **options)
        self.states = result.states
        self.sent.extend(result.notifications)
        return result

    def kinds(self) -> list[str]:
        return [notification.kind.value for notification in self.sent]


# -- values and subjects per rule type -------------------------------------------------------------


QUEUE_CASES = [
    ("backlog", 10, QueueReading(name="q", waiting=12), 12),
    ("latency", 60, QueueReading(name="q", oldest_waiting_age_s=75.5), 75.5),
    ("failure", 5, QueueReading(name="q", failed=5), 5),
    ("failure_count", 3, QueueReading(name="q", failed_in_window={5: 4, 15: 9}), 4),
    ("failure_ratio", 20, QueueReading(name="q", failed_in_window={5: 1}, completed_in_window={5: 3}), 25),
    ("stuck_job", 600, QueueReading(name="q", longest_active_s=900), 900),
    ("worker_lost", 2, QueueReading(name="q", workers=1), 1),
]


@pytest.mark.parametrize(("rule_type", "threshold", "reading", "value"), QUEUE_CASES)
def test_queue_rules_fire_with_their_value(
    rule_type: str, threshold: float, reading: QueueReading, value: float
) -> None:
    result = run([make_rule(rule_type, threshold, queue="q")], Snapshot(taken_ms=T0, queues={"q": reading}))

    assert firing_values(result) == {"queue:q": value}
    assert [n.subjects[0].value for n in result.notifications] == [value]


@pytest.mark.parametrize(
    ("rule_type", "threshold", "reading"),
    [
        ("backlog", 10, QueueReading(name="q", waiting=9)),
        ("latency", 1, QueueReading(name="q", oldest_waiting_age_s=None)),  # nothing waits: age 0
        ("stuck_job", 1, QueueReading(name="q", longest_active_s=None)),  # nothing runs
        ("worker_lost", 2, QueueReading(name="q", workers=2)),  # fires below the threshold only
    ],
)
def test_queue_rules_stay_quiet_below_their_threshold(rule_type: str, threshold: float, reading: QueueReading) -> None:
    result = run([make_rule(rule_type, threshold, queue="q")], Snapshot(taken_ms=T0, queues={"q": reading}))

    assert result.states == {} and result.transitions == [] and result.notifications == []


def test_failure_count_uses_the_rules_window() -> None:
    reading = QueueReading(name="q", failed_in_window={5: 1, 15: 30})

    five = run([make_rule("failure_count", 10)], Snapshot(taken_ms=T0, queues={"q": reading}))
    fifteen = run([make_rule("failure_count", 10, windowMinutes=15)], Snapshot(taken_ms=T0, queues={"q": reading}))

    assert firing_values(five) == {}
    assert firing_values(fifteen) == {"queue:q": 30}


def test_failure_ratio_without_traffic_is_no_data() -> None:
    holding = QueueReading(name="q", failed_in_window={5: 5}, completed_in_window={5: 5})
    idle = QueueReading(name="q", failed_in_window={5: 0}, completed_in_window={5: 0})
    rule = make_rule("failure_ratio", 50)

    first = run([rule], Snapshot(taken_ms=T0, queues={"q": holding}))
    second = run([rule], Snapshot(taken_ms=T0 + MINUTE, queues={"q": idle}), first.states, now_ms=T0 + MINUTE)
    never_held = run([rule], Snapshot(taken_ms=T0, queues={"q": idle}))

    assert firing_values(first) == {"queue:q": 50}
    assert second.states[("r", "queue:q")].state is AlertStatus.NO_DATA
    assert [n.kind for n in second.notifications] == [NotificationKind.NO_DATA]
    assert never_held.states == {}


def test_worker_lost_without_a_queue_watches_every_worker() -> None:
    rule = make_rule("worker_lost", 1)

    none_left = run([rule], Snapshot(taken_ms=T0, queues=queues(a=1), workers_total=0))
    some_left = run([rule], Snapshot(taken_ms=T0, queues=queues(a=1), workers_total=3))

    assert firing_values(none_left) == {"all": 0}
    assert some_left.states == {}


def test_worker_lost_for_a_named_queue_the_snapshot_lacks_counts_no_workers() -> None:
    result = run([make_rule("worker_lost", 1, queue="emails")], Snapshot(taken_ms=T0, queues=queues(other=1)))

    assert firing_values(result) == {"queue:emails": 0}


def test_node_resource_rules_read_live_nodes_of_matching_services() -> None:
    nodes = {
        "billing/a-1": node("billing/a-1", cpu_percent=95, ram_percent=40, disk_percent=91),
        "billing/b-2": node("billing/b-2", cpu_percent=97, stale=True),
        "search/c-3": node("search/c-3", cpu_percent=99, ram_percent=90),
    }
    rules = [
        make_rule("node_cpu", 90, id="cpu", service="bill*"),
        make_rule("node_ram", 85, id="ram"),
        make_rule("node_disk", 90, id="disk"),
    ]

    result = run(rules, Snapshot(taken_ms=T0, nodes=nodes))

    assert {key: state.value for key, state in result.states.items()} == {
        ("cpu", "node:billing/a-1"): 95,
        ("ram", "node:search/c-3"): 90,
        ("disk", "node:billing/a-1"): 91,
    }


def test_node_down_counts_seconds_since_the_last_pulse_of_stale_nodes_too() -> None:
    nodes = {
        "billing/a-1": node("billing/a-1", last_seen_ms=T0 - 90_000, stale=True),
        "billing/b-2": node("billing/b-2", last_seen_ms=T0 - 10_000),
        "search/c-3": node("search/c-3", last_seen_ms=T0 - 300_000, stale=True),
    }

    result = run([make_rule("node_down", 60, service="billing")], Snapshot(taken_ms=T0, nodes=nodes))

    assert firing_values(result) == {"node:billing/a-1": 90}


def test_schedule_missed_matches_the_schedules_queue() -> None:
    schedules = {
        "nightly": ScheduleReading(id="nightly", queue="reports", late_s=400),
        "hourly": ScheduleReading(id="hourly", queue="emails", late_s=900),
        "on-time": ScheduleReading(id="on-time", queue="reports", late_s=0),
    }

    result = run([make_rule("schedule_missed", 300, queue="rep*")], Snapshot(taken_ms=T0, schedules=schedules))

    assert firing_values(result) == {"schedule:nightly": 400}


def test_meta_rules_watch_channels_and_archive_groups() -> None:
    snapshot = Snapshot(taken_ms=T0, channels={"slack": 4, "email": 0}, archive_lag={"archiver": 25_000, "audit": 3})
    rules = [make_rule("channel_failing", 3, id="channels"), make_rule("archive_lag", 10_000, id="lag")]

    result = run(rules, snapshot)

    assert {key: state.value for key, state in result.states.items()} == {
        ("channels", "channel:slack"): 4,
        ("lag", "archive:archiver"): 25_000,
    }


def test_queue_globs_select_subjects() -> None:
    snapshot = Snapshot(taken_ms=T0, queues=queues(**{"emails": 50, "emails-eu": 50, "emails-us": 5, "sms": 50}))

    globbed = run([make_rule(queue="emails-*")], snapshot)
    plain = run([make_rule(queue="emails")], snapshot)
    every = run([make_rule()], snapshot)
    bracket = run([make_rule(queue="[es]m*")], snapshot)

    assert sorted(firing_values(globbed)) == ["queue:emails-eu"]
    assert sorted(firing_values(plain)) == ["queue:emails"]
    assert sorted(firing_values(every)) == ["queue:emails", "queue:emails-eu", "queue:sms"]
    assert sorted(firing_values(bracket)) == ["queue:emails", "queue:emails-eu", "queue:sms"]


# -- unreadable parts, vanished and out-of-scope subjects ------------------------------------------


def test_an_unreadable_part_puts_stored_states_in_error_not_ok() -> None:
    clock = Clock([make_rule(queue="q*")])
    clock.tick(0, queues(q1=50))

    result = clock.tick(MINUTE, None)

    assert result.states[("r", "queue:q1")].state is AlertStatus.ERROR
    assert [t.to_state for t in result.transitions] == [AlertStatus.ERROR]
    assert result.notifications == []


def test_a_rule_with_a_known_subject_records_an_error_without_any_history() -> None:
    result = run([make_rule(id="one", queue="emails"), make_rule("worker_lost", 1, id="all")], Snapshot(taken_ms=T0))

    assert {key: state.state for key, state in result.states.items()} == {
        ("all", "all"): AlertStatus.ERROR,
        ("one", "queue:emails"): AlertStatus.ERROR,
    }


def test_a_vanished_firing_queue_goes_to_no_data_and_says_so() -> None:
    clock = Clock([make_rule()])
    clock.tick(0, queues(q=50))

    vanished = clock.tick(MINUTE, queues(other=1))
    back_clear = clock.tick(MINUTE, queues(q=1))

    assert vanished.states[("r", "queue:q")].state is AlertStatus.NO_DATA
    assert back_clear.states[("r", "queue:q")].state is AlertStatus.INACTIVE
    assert clock.kinds() == ["firing", "no_data"]


def test_a_subject_the_rule_no_longer_covers_resolves() -> None:
    first = run([make_rule(queue="q*")], Snapshot(taken_ms=T0, queues=queues(q1=50)))

    narrowed = run(
        [make_rule(queue="x*")], Snapshot(taken_ms=T0 + MINUTE, queues=queues(q1=50)), first.states, now_ms=T0 + MINUTE
    )

    assert narrowed.states[("r", "queue:q1")].state is AlertStatus.RESOLVED
    assert [n.kind for n in narrowed.notifications] == [NotificationKind.RESOLVED]


def test_disabled_and_unknown_rules_are_skipped_and_their_states_kept() -> None:
    stored = {
        ("off", "queue:q"): AlertState(state=AlertStatus.FIRING, seq=4, since_ms=T0 - MINUTE, notified=True),
        ("new", "queue:q"): AlertState(state=AlertStatus.PENDING, seq=1, since_ms=T0 - MINUTE),
    }
    rules = [make_rule(id="off", enabled=False), make_rule("token_expiring", 1, id="new")]

    result = run(rules, Snapshot(taken_ms=T0, queues=queues(q=0)), stored)

    assert result.states == stored
    assert result.transitions == [] and result.notifications == []


def test_a_repeated_rule_id_is_evaluated_once() -> None:
    rules = [make_rule(threshold=10), make_rule(threshold=1000)]

    result = run(rules, Snapshot(taken_ms=T0, queues=queues(q=50)))

    assert firing_values(result) == {"queue:q": 50}
    assert len(result.transitions) == 1


# -- for, keep firing, repeats ---------------------------------------------------------------------


def test_for_holds_the_alert_pending_until_the_condition_lasted() -> None:
    clock = Clock([make_rule(forSeconds=120)])

    states = [
        clock.tick(advance, queues(q=50)).states[("r", "queue:q")].state for advance in (0, MINUTE, MINUTE, MINUTE)
    ]

    assert states == [AlertStatus.PENDING, AlertStatus.PENDING, AlertStatus.FIRING, AlertStatus.FIRING]
    assert clock.kinds() == ["firing"]
    assert clock.states[("r", "queue:q")].active_since_ms == T0


def test_a_pending_alert_that_stops_holding_never_notifies() -> None:
    clock = Clock([make_rule(forSeconds=120)])
    clock.tick(0, queues(q=50))

    result = clock.tick(MINUTE, queues(q=1))

    assert result.states[("r", "queue:q")].state is AlertStatus.INACTIVE
    assert clock.kinds() == []


def test_repeat_minutes_renotify_while_firing() -> None:
    clock = Clock([make_rule(repeatMinutes=10, cooldownMinutes=60)])

    for _ in range(7):
        clock.tick(5 * MINUTE, queues(q=50))

    assert clock.kinds() == ["firing", "repeat", "repeat", "repeat"]
    assert [n.at_ms - T0 for n in clock.sent] == [5 * MINUTE, 15 * MINUTE, 25 * MINUTE, 35 * MINUTE]
    assert len({n.id for n in clock.sent}) == 4


def test_without_repeat_minutes_the_legacy_cooldown_is_the_repeat_interval() -> None:
    clock = Clock([make_rule(cooldownMinutes=30)])

    for _ in range(7):
        clock.tick(10 * MINUTE, queues(q=50))

    assert clock.kinds() == ["firing", "repeat", "repeat"]


def test_a_cooldown_of_zero_never_repeats() -> None:
    clock = Clock([make_rule(cooldownMinutes=0)])

    for _ in range(5):
        clock.tick(MINUTE, queues(q=50))

    assert clock.kinds() == ["firing"]


def test_keep_firing_for_damps_flapping_into_one_alert() -> None:
    clock = Clock([make_rule(keepFiringForSeconds=300)])

    for waiting in (50, 1, 50, 1, 50, 1, 1, 1, 1, 1, 1):
        clock.tick(MINUTE, queues(q=waiting))

    assert clock.kinds() == ["firing", "resolved"]
    resolved = clock.sent[-1]
    assert resolved.at_ms == T0 + 11 * MINUTE  # five minutes after the last time it held
    assert resolved.subjects[0].duration_s == 10 * 60


def test_without_keep_firing_for_every_flap_notifies() -> None:
    clock = Clock([make_rule()])

    for waiting in (50, 1, 50, 1):
        clock.tick(MINUTE, queues(q=waiting))

    assert clock.kinds() == ["firing", "resolved", "firing", "resolved"]


# -- silences, mute windows, inhibition ------------------------------------------------------------


def silence(silence_id: str, start_ms: int, end_ms: int, **matchers: str) -> Silence:
    return Silence(
        id=silence_id, matchers=SilenceMatchers.model_validate(matchers), starts_at_ms=start_ms, ends_at_ms=end_ms
    )


def test_a_silence_ending_while_firing_sends_exactly_one_firing_notification() -> None:
    clock = Clock([make_rule(cooldownMinutes=60)])
    quiet = [silence("maint", T0, T0 + 10 * MINUTE, queue="q")]

    recorded = [clock.tick(2 * MINUTE, queues(q=50), silences=quiet) for _ in range(10)]

    assert clock.kinds() == ["firing"]
    assert clock.sent[0].at_ms == T0 + 10 * MINUTE
    assert recorded[0].states[("r", "queue:q")].silenced_by == "maint"
    assert recorded[0].transitions[0].kind is None and recorded[0].transitions[0].silenced_by == "maint"


def test_a_silenced_alert_is_still_evaluated_and_recorded_but_resolves_quietly() -> None:
    clock = Clock([make_rule()])
    quiet = [silence("all-queues", T0, T0 + 60 * MINUTE, queue="*")]

    firing = clock.tick(MINUTE, queues(q=50), silences=quiet)
    resolved = clock.tick(MINUTE, queues(q=1), silences=quiet)

    assert [t.to_state for t in firing.transitions + resolved.transitions] == [
        AlertStatus.FIRING,
        AlertStatus.RESOLVED,
    ]
    assert clock.kinds() == []


def test_a_silence_started_after_notifying_still_sends_no_resolve() -> None:
    clock = Clock([make_rule()])
    clock.tick(MINUTE, queues(q=50))
    quiet = [silence("late", T0, T0 + 60 * MINUTE, rule="r")]

    clock.tick(MINUTE, queues(q=50), silences=quiet)
    clock.tick(MINUTE, queues(q=1), silences=quiet)

    assert clock.kinds() == ["firing"]


def test_silence_matchers_compare_severity_and_service() -> None:
    rules = [make_rule("node_cpu", 90, id="cpu", severity="critical")]
    snapshot = Snapshot(taken_ms=T0, nodes={"db/a-1": node("db/a-1", cpu_percent=99)})

    by_service = run(rules, snapshot, silences=[silence("s", T0, T0 + 1, service="d?")])
    wrong_severity = run(rules, snapshot, silences=[silence("s", T0, T0 + 1, severity="warning")])
    expired = run(rules, snapshot, silences=[silence("s", T0 - 10, T0, service="db")])

    assert by_service.notifications == [] and by_service.states[("cpu", "node:db/a-1")].silenced_by == "s"
    assert len(wrong_severity.notifications) == 1
    assert len(expired.notifications) == 1


def test_a_mute_window_mutes_matching_alerts_while_it_is_open() -> None:
    mute = MuteWindow(id="nightly", cron="0 0 * * *", duration_minutes=30, matchers=SilenceMatchers(queue="q"))
    clock = Clock([make_rule()])

    during = clock.tick(10 * MINUTE, queues(q=50), mutes=[mute])
    after = clock.tick(30 * MINUTE, queues(q=50), mutes=[mute])

    assert during.states[("r", "queue:q")].silenced_by == "nightly"
    assert after.states[("r", "queue:q")].silenced_by is None
    assert [n.at_ms for n in clock.sent] == [T0 + 40 * MINUTE]


def test_an_unreadable_mute_window_is_reported_and_ignored() -> None:
    mute = MuteWindow(id="broken", cron="61 * * * *", duration_minutes=30)

    result = run([make_rule()], Snapshot(taken_ms=T0, queues=queues(q=50)), mutes=[mute])

    assert len(result.notifications) == 1
    assert len(result.problems) == 1 and "broken" in result.problems[0]


def test_node_down_inhibits_resource_rules_of_that_node_only() -> None:
    nodes = {
        "db/a-1": node("db/a-1", cpu_percent=99, last_seen_ms=T0 - 120_000),
        "db/b-2": node("db/b-2", cpu_percent=99, last_seen_ms=T0),
    }
    rules = [make_rule("node_down", 60, id="down"), make_rule("node_cpu", 90, id="cpu")]

    result = run(rules, Snapshot(taken_ms=T0, nodes=nodes))

    assert result.states[("cpu", "node:db/a-1")].silenced_by == "inhibited:down"
    assert result.states[("cpu", "node:db/b-2")].silenced_by is None
    assert [(n.rule_id, [s.subject for s in n.subjects]) for n in result.notifications] == [
        ("cpu", ["node:db/b-2"]),
        ("down", ["node:db/a-1"]),
    ]


def test_a_silence_takes_precedence_over_inhibition() -> None:
    nodes = {"db/a-1": node("db/a-1", cpu_percent=99, last_seen_ms=T0 - 120_000)}
    rules = [make_rule("node_down", 60, id="down"), make_rule("node_cpu", 90, id="cpu")]

    result = run(rules, Snapshot(taken_ms=T0, nodes=nodes), silences=[silence("ops", T0, T0 + 1, rule="cpu")])

    assert result.states[("cpu", "node:db/a-1")].silenced_by == "ops"


# -- grouping, ids, determinism --------------------------------------------------------------------


def test_fifty_queues_crossing_together_make_one_notification_with_sorted_subjects() -> None:
    names = [f"queue-{index:02d}" for index in range(50)]
    readings = queues(**{name: 2000 + index for index, name in enumerate(reversed(names))})
    rule = make_rule(threshold=1000, runbookUrl="https://runbooks.example.com/backlog", channels=["slack"])

    result = run([rule], Snapshot(taken_ms=T0, queues=readings))

    assert len(result.notifications) == 1
    notification = result.notifications[0]
    assert [s.subject for s in notification.subjects] == [f"queue:{name}" for name in names]
    assert notification.id == "r:queue:queue-00:1"
    assert notification.channels == ["slack"]
    assert notification.runbook_url == "https://runbooks.example.com/backlog"
    assert len(result.transitions) == 50


def test_one_notification_per_rule_and_kind_in_one_evaluation() -> None:
    clock = Clock([make_rule(id="b"), make_rule(id="a")])
    clock.tick(0, queues(q1=50, q2=50))

    result = clock.tick(MINUTE, queues(q1=1, q3=50))

    assert [(n.rule_id, n.kind.value, [s.subject for s in n.subjects]) for n in result.notifications] == [
        ("a", "firing", ["queue:q3"]),
        ("a", "resolved", ["queue:q1"]),
        ("a", "no_data", ["queue:q2"]),
        ("b", "firing", ["queue:q3"]),
        ("b", "resolved", ["queue:q1"]),
        ("b", "no_data", ["queue:q2"]),
    ]


def test_evaluation_is_deterministic_and_leaves_its_input_alone() -> None:
    rules = [make_rule(id="b", forSeconds=30), make_rule(id="a")]
    stored = run(rules, Snapshot(taken_ms=T0, queues=queues(q1=50, q2=50))).states
    before = dict(stored)
    snapshot = Snapshot(taken_ms=T0 + MINUTE, queues=queues(q2=50, q1=1))

    first = run(rules, snapshot, stored, now_ms=T0 + MINUTE)
    second = run(list(reversed(rules)), snapshot, stored, now_ms=T0 + MINUTE)

    assert first == second
    assert stored == before
    assert [(t.rule_id, t.subject) for t in first.transitions] == sorted(
        (t.rule_id, t.subject) for t in first.transitions
    )


def test_changed_lists_the_seq_each_write_must_find() -> None:
    clock = Clock([make_rule()])
    clock.tick(0, queues(q=50))

    result = clock.tick(MINUTE, queues(q=1))

    assert result.changed() == [(("r", "queue:q"), 1, result.states[("r", "queue:q")])]
    assert result.states[("r", "queue:q")].seq == 2


def test_states_transitions_and_notifications_survive_the_wire() -> None:
    clock = Clock([make_rule(keepFiringForSeconds=60)])
    results = [clock.tick(MINUTE, queues(q=waiting)) for waiting in (50, 1, 1, 1)]

    for result in results:
        for state in result.states.values():
            assert decode_alert_state(encode_alert_state(state)) == state
        for transition in result.transitions:
            assert decode_alert_transition(encode_alert_transition(transition)) == transition
        for notification in result.notifications:
            assert decode_alert_notification(encode_alert_notification(notification)) == notification
