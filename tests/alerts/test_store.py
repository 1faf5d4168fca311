"""The alert store on a real Redis: the compare-and-set apply, history, events, silences, mutes, health."""

from __future__ import annotations

import json

import pytest
import redis
from event_stream import outbox_notifications, stream_events

from zenith_protocol import (
    AlertRule,
    AlertState,
    AlertStatus,
    KeySpace,
    NotFoundError,
    Notification,
    NotificationKind,
    NotificationSubject,
    SilenceMatchers,
    Transition,
)
from zenith_sdk.alerts._silences import (
    add_mute,
    add_silence,
    end_silence,
    list_mutes,
    list_silences,
    prune_silences,
    remove_mute,
)
from zenith_sdk.alerts.evaluate import Evaluation
from zenith_sdk.alerts.store import (
    apply_evaluation,
    channel_health,
    read_history,
    read_states,
    record_delivery,
    state_field,
)

NOW = 1_767_225_600_000
RULE = AlertRule(id="backlog", name="Backlog", type="backlog", threshold=10, severity="critical")


def _firing(seq: int, value: float = 20) -> AlertState:
    return AlertState(state=AlertStatus.FIRING, seq=seq, since_ms=NOW, active_since_ms=NOW, value=value, notified=True)


def _evaluation(subjects: list[str], seq: int = 1) -> Evaluation:
    states = {("backlog", subject): _firing(seq) for subject in subjects}
    transitions = [
        Transition(
            rule_id="backlog",
            subject=subject,
            from_state=AlertStatus.INACTIVE,
            to_state=AlertStatus.FIRING,
            seq=seq,
            at_ms=NOW,
            value=20,
            threshold=10,
            kind=NotificationKind.FIRING,
        )
        for subject in subjects
    ]
    notification = Notification(
        id=f"backlog:{subjects[0]}:{seq}",
        rule_id="backlog",
        rule_name="Backlog",
        type="backlog",
        kind=NotificationKind.FIRING,
        at_ms=NOW,
        threshold=10,
        subjects=[NotificationSubject(subject=subject, value=20, since_ms=NOW, seq=seq) for subject in subjects],
    )
    return Evaluation(states=states, transitions=transitions, notifications=[notification])


def _text(value: object) -> str:
    return str(getattr(value, "value", value))


def _outbox(r: redis.Redis, space: KeySpace) -> list[Notification]:
    return outbox_notifications(r, space)


def test_an_apply_writes_states_outbox_history_and_events(r: redis.Redis, keyspace: KeySpace) -> None:
    read = read_states(r, keyspace=keyspace)

    applied = apply_evaluation(r, read, _evaluation(["queue:a", "queue:b"]), keyspace=keyspace, rules=[RULE])

    assert (applied.states_written, applied.states_lost, applied.notifications) == (2, 0, 1)
    stored = read_states(r, keyspace=keyspace)
    assert stored.states[("backlog", "queue:a")] == _firing(1)
    assert r.hget(keyspace.alerts_states(), state_field("backlog", "queue:b")) is not None
    [sent] = _outbox(r, keyspace)
    assert sent == _evaluation(["queue:a", "queue:b"]).notifications[0]
    assert [t.subject for t in read_history(r, keyspace=keyspace)] == ["queue:b", "queue:a"]
    events = stream_events(r, keyspace)
    assert [(_text(e.type), e.queue, e.subject, e.to_state, e.seq, e.severity) for e in events] == [
        ("alert", "a", "queue:a", "firing", 1, "critical"),
        ("alert", "b", "queue:b", "firing", 1, "critical"),
    ]


def test_the_second_of_two_evaluators_that_read_the_same_states_writes_nothing(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    first, second = read_states(r, keyspace=keyspace), read_states(r, keyspace=keyspace)

    apply_evaluation(r, first, _evaluation(["queue:a"]), keyspace=keyspace)
    applied = apply_evaluation(r, second, _evaluation(["queue:a"]), keyspace=keyspace)

    assert (applied.states_written, applied.states_lost, applied.notifications) == (0, 1, 0)
    assert len(_outbox(r, keyspace)) == 1
    assert r.llen(keyspace.alerts_history()) == 1


def test_subjects_lost_to_another_evaluator_leave_the_notification_and_its_id_follows(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    read = read_states(r, keyspace=keyspace)
    apply_evaluation(r, read, _evaluation(["queue:a"]), keyspace=keyspace)  # another evaluator won queue:a

    applied = apply_evaluation(r, read, _evaluation(["queue:a", "queue:b", "queue:c"]), keyspace=keyspace)

    assert (applied.states_written, applied.states_lost, applied.notifications) == (2, 1, 1)
    second = _outbox(r, keyspace)[1]
    assert second.id == "backlog:queue:b:1"
    assert [s.subject for s in second.subjects] == ["queue:b", "queue:c"]


def test_a_state_the_evaluation_drops_is_deleted(r: redis.Redis, keyspace: KeySpace) -> None:
    apply_evaluation(r, read_states(r, keyspace=keyspace), _evaluation(["queue:a"]), keyspace=keyspace)

    applied = apply_evaluation(
        r, read_states(r, keyspace=keyspace), Evaluation(states={}, transitions=[], notifications=[]), keyspace=keyspace
    )

    assert applied.states_written == 1
    assert r.hlen(keyspace.alerts_states()) == 0


def test_cluster_safe_layout_appends_events_after_the_script(r: redis.Redis, keyspace: KeySpace) -> None:
    space = keyspace.model_copy(update={"cluster_safe": True})

    apply_evaluation(r, read_states(r, keyspace=space), _evaluation(["queue:a"]), keyspace=space)

    assert r.xlen(space.events()) == 1 and r.xlen(space.alerts_outbox()) == 1


def test_undecodable_states_are_reported_and_left_alone(r: redis.Redis, keyspace: KeySpace) -> None:
    r.hset(keyspace.alerts_states(), mapping={state_field("x", "all"): "{oops", "no-separator": "{}"})

    read = read_states(r, keyspace=keyspace)

    assert set(read.invalid) == {state_field("x", "all"), "no-separator"}
    assert read.states == {}


def test_silences_start_end_and_are_pruned(r: redis.Redis, keyspace: KeySpace) -> None:
    silence = add_silence(
        r,
        matchers=SilenceMatchers(queue="emails*"),
        duration_s=3600,
        comment="deploy",
        author="ana",
        keyspace=keyspace,
    )

    assert [s.id for s in list_silences(r, keyspace=keyspace)] == [silence.id]
    ended = end_silence(r, silence.id, actor="ana", keyspace=keyspace)
    assert list_silences(r, keyspace=keyspace) == []
    assert [s.id for s in list_silences(r, keyspace=keyspace, include_ended=True)] == [silence.id]
    assert prune_silences(r, keyspace=keyspace, now_ms=ended.ends_at_ms + 25 * 3600 * 1000) == 1
    assert [_text(event.action) for event in stream_events(r, keyspace)] == ["silence", "unsilence"]
    with pytest.raises(NotFoundError):
        end_silence(r, "nope", keyspace=keyspace)
    with pytest.raises(ValueError, match="matcher"):
        add_silence(r, matchers=SilenceMatchers(), duration_s=60, comment="", author="a", keyspace=keyspace)


def test_mute_windows(r: redis.Redis, keyspace: KeySpace) -> None:
    window = add_mute(
        r,
        cron="0 22 * * 5",
        duration_minutes=120,
        timezone_name="Europe/Berlin",
        matchers=SilenceMatchers(rule="backlog"),
        keyspace=keyspace,
    )

    assert list_mutes(r, keyspace=keyspace) == [window]
    remove_mute(r, window.id, keyspace=keyspace)
    assert list_mutes(r, keyspace=keyspace) == []
    with pytest.raises(ValueError, match="cron"):
        add_mute(r, cron="every friday", duration_minutes=1, matchers=SilenceMatchers(rule="x"), keyspace=keyspace)
    with pytest.raises(ValueError, match="zone"):
        add_mute(
            r,
            cron="0 1 * * *",
            duration_minutes=1,
            timezone_name="Mars/Base",
            matchers=SilenceMatchers(rule="x"),
            keyspace=keyspace,
        )


def test_channel_health_counts_consecutive_failures(r: redis.Redis, keyspace: KeySpace) -> None:
    record_delivery(r, "slack", ok=False, now_ms=NOW, error="HTTP 500", keyspace=keyspace)
    record_delivery(r, "slack", ok=False, now_ms=NOW + 1, error="timeout", keyspace=keyspace)
    record_delivery(r, "email", ok=True, now_ms=NOW + 2, keyspace=keyspace)

    health = channel_health(r, keyspace=keyspace)

    assert health["slack"].consecutive_failures == 2 and health["slack"].last_error == "timeout"
    assert health["email"].last_success_ms == NOW + 2 and health["email"].consecutive_failures == 0
    record_delivery(r, "slack", ok=True, now_ms=NOW + 3, keyspace=keyspace)
    assert channel_health(r, keyspace=keyspace)["slack"].consecutive_failures == 0
    assert json.loads(r.hget(keyspace.alerts_channels(), "slack") or b"")["lastAttemptMs"] == NOW + 3
