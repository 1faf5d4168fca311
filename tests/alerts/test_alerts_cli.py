"""``zenith alerts`` end to end on a real Redis: rules, silences, mute windows, history, channels, run."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any

import pytest
import redis
from cli_run import finish, one_line, prefix_options, start, zenith
from hypothesis import given
from hypothesis import strategies as st
from patience import HANG_S

from zenith_protocol import KeySpace
from zenith_sdk.alerts import read_history, read_states
from zenith_sdk.cli import main
from zenith_sdk.cli._alerts_common import duration_s

NODE_RULES = '[{"id":"high_backlog","name":"Queue backlog","type":"backlog","threshold":2,"cooldownMinutes":60}]'


def _url(r: redis.Redis) -> str:
    kwargs = r.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
def opts(r: redis.Redis, keyspace: KeySpace) -> list[str]:
    return ["--redis", _url(r), *prefix_options(keyspace)]


def _json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_rules_add_edit_remove(
    opts: list[str], r: redis.Redis, keyspace: KeySpace, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _json_out(capsys, ["alerts", "rules", "--json", *opts])
    assert [rule["id"] for rule in rules] == ["high_failure", "high_backlog", "no_workers"]

    added = _json_out(
        capsys,
        [
            "alerts",
            "add",
            "--type",
            "latency",
            "--threshold",
            "300",
            "--queue",
            "emails*",
            "--for",
            "2m",
            "--repeat",
            "4h",
            "--severity",
            "critical",
            "--id",
            "slow",
            "--json",
            *opts,
        ],
    )
    assert added == {
        "id": "slow",
        "name": "slow",
        "type": "latency",
        "threshold": 300,
        "queue": "emails*",
        "cooldownMinutes": 30,
        "severity": "critical",
        "forSeconds": 120,
        "repeatMinutes": 240,
    }
    edited = _json_out(
        capsys, ["alerts", "edit", "slow", "--threshold", "600", "--clear", "repeatMinutes", "--json", *opts]
    )
    assert edited["threshold"] == 600 and "repeatMinutes" not in edited
    stored = json.loads(r.get(keyspace.alert_rules()) or b"")
    assert [rule["id"] for rule in stored] == ["high_failure", "high_backlog", "no_workers", "slow"]

    assert main(["alerts", "remove", "slow", *opts]) == 0
    assert b"slow" not in (r.get(keyspace.alert_rules()) or b"")
    capsys.readouterr()
    assert main(["alerts", "rules", *opts]) == 0
    assert "high_backlog" in capsys.readouterr().out


def test_silence_silences_and_unsilence(opts: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    silence = _json_out(
        capsys,
        [
            "alerts",
            "silence",
            "high_*",
            "--match",
            "queue=emails",
            "--for",
            "2h",
            "--comment",
            "deploy [x]",
            "--author",
            "ana",
            "--json",
            *opts,
        ],
    )
    assert silence["matchers"] == {"rule": "high_*", "queue": "emails"}
    assert silence["endsAt"] - silence["startsAt"] == 2 * 3600 * 1000
    listed = _json_out(capsys, ["alerts", "silences", "--json", *opts])
    assert [entry["id"] for entry in listed] == [silence["id"]]
    assert main(["alerts", "silences", *opts]) == 0
    assert "deploy [x]" in capsys.readouterr().out  # data, never markup

    assert main(["alerts", "unsilence", silence["id"], *opts]) == 0
    assert _json_out(capsys, ["alerts", "silences", "--json", *opts]) == []


def test_mute_windows(opts: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    window = _json_out(
        capsys,
        [
            "alerts",
            "mute",
            "add",
            "--cron",
            "0 22 * * 5",
            "--duration",
            "2h",
            "--timezone",
            "Europe/Berlin",
            "--match",
            "service=api",
            "--json",
            *opts,
        ],
    )
    assert window["durationMinutes"] == 120
    assert [w["id"] for w in _json_out(capsys, ["alerts", "mute", "list", "--json", *opts])] == [window["id"]]
    assert main(["alerts", "mute", "remove", window["id"], *opts]) == 0


def test_channels_are_shown_redacted(
    opts: list[str], r: redis.Redis, keyspace: KeySpace, capsys: pytest.CaptureFixture[str]
) -> None:
    r.set(
        keyspace.alert_config(),
        '{"channels":{"slack":{"enabled":true,"webhookUrl":"https://hooks.slack.com/services/T0/B0/SECRET"},'
        '"email":{"enabled":false,"smtpPass":"hunter2"}}}',
    )

    shown = _json_out(capsys, ["alerts", "channels", "--json", *opts])
    assert main(["alerts", "channels", *opts]) == 0
    text = json.dumps(shown) + capsys.readouterr().out

    assert "SECRET" not in text and "hunter2" not in text
    assert shown["config"]["channels"]["slack"]["webhookUrl"] == "https://hooks.slack.com/***"


def test_run_evaluates_until_sigterm_and_history_shows_it(r: redis.Redis, keyspace: KeySpace) -> None:
    r.set(keyspace.alert_rules(), NODE_RULES)
    r.lpush(keyspace.queue("emails"), *["{}"] * 3)
    options = ["--redis", _url(r), *prefix_options(keyspace)]
    process = start(["alerts", "run", "--interval", "0.2", "--no-send", *options])
    try:
        deadline_reached = True
        for _ in range(int(HANG_S / 0.1)):
            if read_states(r, keyspace=keyspace).states:
                deadline_reached = False
                break
            threading_wait(0.1)
        assert not deadline_reached, "the loop never evaluated"
    finally:
        process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr

    [transition] = read_history(r, keyspace=keyspace)
    assert (transition.subject, transition.to_state.value) == ("queue:emails", "firing")
    history = zenith("alerts", "history", "--json", *options)
    assert json.loads(history.stdout)[0]["subject"] == "queue:emails"


def threading_wait(seconds: float) -> None:
    threading.Event().wait(seconds)


@pytest.mark.parametrize(
    ("argv", "status", "text"),
    [
        (["alerts", "remove", "nope"], 2, "alert rule 'nope' not found"),
        (["alerts", "add", "--type", "backlog", "--threshold", "x"], 2, "invalid float value"),
        (["alerts", "silence", "r", "--for", "soon", "--comment", "c"], 2, "not a duration"),
        (["alerts", "silence", "--for", "1h", "--comment", "c"], 2, "needs a matcher"),
        (["alerts", "mute", "add", "--cron", "fridays", "--duration", "1h", "--match", "rule=x"], 2, "five-field"),
        (["alerts", "unsilence", "nope"], 2, "silence 'nope' not found"),
        (["alerts", "edit", "high_backlog"], 2, "nothing to change"),
        (["alerts", "test", "pager"], 2, "pager"),
    ],
)
def test_errors_are_one_line_without_traceback(
    r: redis.Redis, keyspace: KeySpace, argv: list[str], status: int, text: str
) -> None:
    result = zenith(*argv, "--redis", _url(r), *prefix_options(keyspace))

    one_line(result, status, text)


def test_unreachable_redis_is_one_line() -> None:
    one_line(zenith("alerts", "rules", "--redis", "redis://127.0.0.1:1/0"), 2, "cannot reach Redis")


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_durations_read_with_their_unit(amount: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert duration_s(f"{amount}{unit}") == amount * seconds
    assert duration_s(f"1h{amount}m") == 3600 + amount * 60


@given(st.one_of(st.text(max_size=12), st.sampled_from(["nan", "inf", "-1", "-5m", "1e400", " 2h "])))
def test_a_duration_is_read_or_refused_never_crashes(text: str) -> None:
    try:
        value = duration_s(text)
    except argparse.ArgumentTypeError:
        return
    assert 0 <= value < float("inf")
