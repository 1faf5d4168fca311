"""Message text: default titles and bodies per kind, grouping, user templates in the sandbox, and redaction."""

from __future__ import annotations

import json

import pytest
from alert_receivers import AT_MS, alert_config, http_server, notification
from hypothesis import given
from hypothesis import strategies as st
from patience import HANG_S

from zenith_sdk.alerts.channels import RetryPolicy, SlackChannel, configured_channels, redact
from zenith_sdk.alerts.messages import (
    MAX_LISTED_SUBJECTS,
    default_body,
    default_title,
    human_duration,
    iso_utc,
    render_message,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.9, "45s"), (60, "1m"), (12 * 60 + 59, "12m"), (3600, "1h"), (3 * 3600 + 5 * 60, "3h 5m")]
    + [(86400, "1d"), (2 * 86400 + 4 * 3600 + 59, "2d 4h"), (-5, "0s")],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_iso_utc_is_second_precision_utc() -> None:
    assert iso_utc(AT_MS + 999) == "2026-05-28T20:26:40Z"


def test_firing_says_what_where_value_against_threshold_since_when_severity_and_runbook() -> None:
    n = notification(runbook_url="https://wiki.example/backlog", description="Emails pile up.")
    assert default_title(n) == "[FIRING critical] Queue backlog: queue:q00"
    assert default_body(n).splitlines() == [
        "Queue backlog (backlog, rule high_backlog) is firing, severity critical.",
        "Emails pile up.",
        "Threshold: >= 1000",
        "- queue:q00: 1500 since 2026-05-28T20:14:40Z (for 12m)",
        "Runbook: https://wiki.example/backlog",
    ]


def test_each_kind_has_its_own_wording() -> None:
    assert default_title(notification(kind="repeat", severity="warning")).startswith("[STILL FIRING warning] ")
    assert "is still firing" in default_body(notification(kind="repeat"))
    assert default_title(notification(kind="no_data")).startswith("[NO DATA critical] ")
    assert "- queue:q00: no data (last value 1500), firing since" in default_body(notification(kind="no_data"))
    resolved = notification(kind="resolved", subjects=1)
    resolved = resolved.model_copy(update={"subjects": [resolved.subjects[0].model_copy(update={"duration_s": 3900})]})
    assert default_title(resolved) == "[RESOLVED] Queue backlog: queue:q00"
    assert default_body(resolved).splitlines()[2] == (
        "- queue:q00: 1500, fired from 2026-05-28T19:21:40Z for 1h 5m, resolved at 2026-05-28T20:26:40Z"
    )


def test_units_and_comparison_follow_the_rule_type() -> None:
    lost = default_body(notification(rule_type="worker_lost", threshold=1, rule_name="No workers"))
    assert "Threshold: < 1" in lost
    cpu = notification(rule_type="node_cpu", threshold=90.5)
    cpu = cpu.model_copy(update={"subjects": [cpu.subjects[0].model_copy(update={"value": 97.25})]})
    assert "Threshold: >= 90.5%" in default_body(cpu) and "- queue:q00: 97.25%" in default_body(cpu)


def test_fifty_subjects_list_ten_and_count_the_rest() -> None:
    n = notification(subjects=50)
    body = default_body(n)
    listed = [line for line in body.splitlines() if line.startswith("- queue:")]
    assert [line.split(":")[1] for line in listed] == [f"q{index:02d}" for index in range(MAX_LISTED_SUBJECTS)]
    assert body.splitlines()[-1] == "and 40 more"
    assert "queue:q10" not in body
    assert default_title(n) == "[FIRING critical] Queue backlog: 50 subjects"


def test_user_templates_render_and_rule_text_stays_data() -> None:
    n = notification(subjects=12, rule_name="{{ 7 * 7 }} queues")
    message = render_message(
        n,
        title_template="{{ severity | upper }}: {{ rule_name }} ({{ subjects | length }})",
        body_template="{% for s in listed_subjects %}{{ s.subject }}={{ s.value }} {% endfor %}+{{ more_subjects }}",
    )
    assert message.template_error is None
    assert message.title == "CRITICAL: {{ 7 * 7 }} queues (12)"
    assert message.body.startswith("queue:q00=1500 queue:q01=1501 ") and message.body.endswith("+2")
    assert message.footer == f"zenith alert {n.id} at 2026-05-28T20:26:40Z"


def test_a_title_template_cannot_break_the_title_line() -> None:
    message = render_message(notification(), title_template="one\r\ntwo\nthree")
    assert message.title == "one two three"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ no_such_name }}", "UndefinedError"),
        ("{% for %}", "TemplateSyntaxError"),
        ("{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("{{ subjects.append(1) }}", "SecurityError"),
        ("{{ rule_name.__class__.__init__.__globals__ }}", "SecurityError"),
        ("{{ 'x' * 10 ** 9 }}", "SecurityError"),
        ("{{ [0] * 10 ** 9 }}", "SecurityError"),
        ("{{ 10 ** 100000 }}", "SecurityError"),
        ("{{ 2 ** 64 ** 64 ** 64 }}", "SecurityError"),
    ],
)
def test_a_failing_or_unsafe_template_falls_back_to_the_default_and_says_why(template: str, reason: str) -> None:
    n = notification()
    message = render_message(n, title_template=template, body_template=template)
    assert (message.title, message.body) == (default_title(n), default_body(n))
    assert message.template_error is not None
    assert f"the title template failed ({reason}" in message.template_error
    assert f"the body template failed ({reason}" in message.template_error
    assert "the default body was used" in message.template_error


def test_channel_templates_override_the_top_level_ones_and_failures_reach_the_delivery() -> None:
    with http_server() as server:
        server.expect_request("/slack").respond_with_data("ok")
        server.expect_request("/discord").respond_with_data("", status=204)
        config = alert_config(
            {
                "templates": {"title": "top {{ rule_name }}", "body": "top body"},
                "channels": {
                    "slack": {"enabled": True, "webhookUrl": server.url_for("/slack"), "templates": {"title": "own"}},
                    "discord": {
                        "enabled": True,
                        "webhookUrl": server.url_for("/discord"),
                        "templates": {"body": "{{ ''.__class__.__mro__ }}"},
                    },
                },
            }
        )
        channels = configured_channels(config)
        slack, discord = channels["slack"].send(notification()), channels["discord"].send(notification())
        assert slack.ok and slack.template_error is None
        assert discord.ok and discord.template_error is not None and "SecurityError" in discord.template_error
        by_path = {request.path: json.loads(request.get_data()) for request, _ in server.log}
    assert by_path["/slack"]["text"].startswith("*own*\ntop body\n")
    assert by_path["/discord"]["content"] == "top Queue backlog"
    assert by_path["/discord"]["embeds"][0]["description"] == default_body(notification())


def test_redact_keeps_scheme_and_host_only() -> None:
    assert redact("https://hooks.slack.com/services/T0/B0/XX?token=1") == "https://hooks.slack.com/***"
    assert redact("posting to https://user:pw@example.com:8443/a#frag failed") == (
        "posting to https://example.com:8443/*** failed"
    )
    assert redact("https://example.com") == "https://example.com"
    assert redact("error at https://hooks.example.com/) (retry)") == "error at https://hooks.example.com/***) (retry)"
    assert redact("login failed for hunter2", "hunter2", None, "") == "login failed for ***"


_SEGMENT = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#@'\"<>\\"))


@given(path=st.lists(_SEGMENT.filter(bool), min_size=1, max_size=4), query=_SEGMENT, prefix=_SEGMENT)
def test_redact_never_shows_a_path_or_query(path: list[str], query: str, prefix: str) -> None:
    secret_path = "/".join(path)
    url = f"https://hooks.example.com/{secret_path}" + (f"?{query}" if query else "")
    shown = redact(f"{prefix} error at {url} (retry)")
    assert "hooks.example.com/***" in shown
    tail = shown.split("hooks.example.com/***", 1)[1]
    assert tail.lstrip(".,:;!?)]}") == " (retry)"  # punctuation that ends a URL is read as the sentence's


def test_a_slack_channel_with_a_failing_template_still_delivers() -> None:
    with http_server() as server:
        server.expect_request("/slack").respond_with_data("ok")
        channel = SlackChannel(
            "slack", server.url_for("/slack"), policy=RetryPolicy(timeout_s=HANG_S), title_template="{{ boom() }}"
        )
        delivery = channel.send(notification())
        (request, _), *_ = server.log
    assert delivery.ok and delivery.template_error is not None and "UndefinedError" in delivery.template_error
    assert json.loads(request.get_data())["text"].startswith("*[FIRING critical] Queue backlog: queue:q00*")
