"""Globs, silence and mute window activity (across DST changes), precedence and inhibition."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zenith_protocol import AlertState, AlertStatus, InvalidScheduleError, MuteWindow, Silence, SilenceMatchers
from zenith_sdk.alerts import AlertLabels, active_mutes, glob_matches, matchers_match, mute_active, silenced_by
from zenith_sdk.alerts.matching import inhibitors, select

NEW_YORK = ZoneInfo("America/New_York")


def utc_ms(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=timezone.utc).timestamp() * 1000)


def local_ms(year: int, month: int, day: int, hour: int, minute: int = 0, *, fold: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=NEW_YORK, fold=fold).timestamp() * 1000)


LABELS = AlertLabels(rule="high_backlog", severity="critical", queue="emails-eu", service=None)


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (None, "anything", True),
        (None, None, True),
        ("emails", "emails", True),
        ("emails", "emails-eu", False),
        ("emails-*", "emails-eu", True),
        ("emails-*", "emails", False),
        ("email?", "emails", True),
        ("[ab]-q", "b-q", True),
        ("[ab]-q", "c-q", False),
        ("Emails", "emails", False),  # case matters: queue names are case-sensitive
        ("*", None, True),  # an absent label reads as ""
        ("x", None, False),
        ("a.b", "aXb", False),  # only glob characters are special
    ],
)
def test_glob_matches(pattern: str | None, value: str | None, matches: bool) -> None:
    assert glob_matches(pattern, value) is matches


@given(names=st.lists(st.text(max_size=8), max_size=8), pattern=st.sampled_from(["*", "a*", "?b", "[ab]*", "ab"]))
def test_select_agrees_with_glob_matches(names: list[str], pattern: str) -> None:
    assert select(pattern, names) == [name for name in names if glob_matches(pattern, name)]


def test_matchers_need_every_given_glob_to_match() -> None:
    assert matchers_match(SilenceMatchers(), LABELS)
    assert matchers_match(SilenceMatchers(rule="high_*", queue="emails-*", severity="crit*"), LABELS)
    assert not matchers_match(SilenceMatchers(rule="high_*", queue="sms"), LABELS)
    assert not matchers_match(SilenceMatchers(service="db"), LABELS)


def test_a_silence_is_active_from_its_start_to_just_before_its_end() -> None:
    silence = Silence(id="s", starts_at_ms=1000, ends_at_ms=2000)

    assert [silenced_by(LABELS, [silence], [], now) for now in (999, 1000, 1999, 2000)] == [None, "s", "s", None]


def test_the_lowest_silence_id_wins_then_mute_windows_then_inhibition() -> None:
    silences = [Silence(id=name, starts_at_ms=0, ends_at_ms=10) for name in ("b", "a")]
    mute = MuteWindow(id="m", cron="* * * * *", duration_minutes=1)

    assert silenced_by(LABELS, silences, [mute], 5, inhibitor="down") == "a"
    assert silenced_by(LABELS, [], [mute], 5, inhibitor="down") == "m"
    assert silenced_by(LABELS, [], [], 5, inhibitor="down") == "inhibited:down"
    assert silenced_by(LABELS, [], [], 5) is None


def test_a_mute_window_opens_at_each_cron_time_for_its_duration() -> None:
    window = MuteWindow(id="w", cron="0 2 * * *", duration_minutes=90)

    assert not mute_active(window, utc_ms(2026, 1, 5, 1, 59))
    assert mute_active(window, utc_ms(2026, 1, 5, 2, 0))
    assert mute_active(window, utc_ms(2026, 1, 5, 3, 29))
    assert not mute_active(window, utc_ms(2026, 1, 5, 3, 30))


def test_a_mute_window_follows_its_zone_across_the_spring_dst_change() -> None:
    # New York moves from EST (UTC-5) to EDT (UTC-4) on 2026-03-08 at 02:00 local.
    window = MuteWindow(id="w", cron="30 1 * * *", duration_minutes=60, timezone="America/New_York")

    before = local_ms(2026, 3, 7, 1, 45)
    after = local_ms(2026, 3, 9, 1, 45)

    assert mute_active(window, before) and mute_active(window, after)
    assert before == utc_ms(2026, 3, 7, 6, 45) and after == utc_ms(2026, 3, 9, 5, 45)
    assert not mute_active(window, utc_ms(2026, 3, 9, 6, 45))  # 02:45 EDT: closed
    assert not mute_active(window, utc_ms(2026, 3, 7, 5, 45))  # 00:45 EST: not yet open


def test_a_mute_window_at_a_local_time_the_spring_change_skips_does_not_open_that_day() -> None:
    window = MuteWindow(id="w", cron="30 2 * * *", duration_minutes=30, timezone="America/New_York")

    assert mute_active(window, local_ms(2026, 3, 7, 2, 45))
    assert not mute_active(window, local_ms(2026, 3, 8, 3, 15))  # 02:30 never happened on 8 March
    assert mute_active(window, local_ms(2026, 3, 9, 2, 45))


def test_a_mute_window_at_a_repeated_local_time_opens_once_at_its_first_occurrence() -> None:
    # New York goes back from EDT to EST on 2026-11-01 at 02:00 local: 01:30 happens twice.
    window = MuteWindow(id="w", cron="30 1 * * *", duration_minutes=20, timezone="America/New_York")

    assert mute_active(window, local_ms(2026, 11, 1, 1, 40, fold=0))
    assert not mute_active(window, local_ms(2026, 11, 1, 1, 40, fold=1))


@pytest.mark.parametrize(
    "window",
    [
        MuteWindow(id="w", cron="0 2 * *", duration_minutes=5),
        MuteWindow(id="w", cron="0 0 2 * * *", duration_minutes=5),
        MuteWindow(id="w", cron="0 25 * * *", duration_minutes=5),
        MuteWindow(id="w", cron="0 2 * * *", duration_minutes=5, timezone="Mars/Olympus"),
    ],
)
def test_an_unusable_mute_window_raises_and_is_reported_as_a_problem(window: MuteWindow) -> None:
    with pytest.raises(InvalidScheduleError):
        mute_active(window, utc_ms(2026, 1, 1, 2))

    active, problems = active_mutes([window], utc_ms(2026, 1, 1, 2))

    assert active == [] and len(problems) == 1


def test_inhibitors_are_firing_node_down_states_only() -> None:
    states = {
        ("down-b", "node:db/a-1"): AlertState(state=AlertStatus.FIRING, since_ms=1),
        ("down-a", "node:db/a-1"): AlertState(state=AlertStatus.FIRING, since_ms=1),
        ("down-a", "node:db/b-2"): AlertState(state=AlertStatus.PENDING, since_ms=1),
    }

    assert inhibitors(states) == {"node:db/a-1": "down-a"}
