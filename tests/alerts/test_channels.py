"""Slack, Discord and signed webhook channels against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from alert_receivers import AT_MS, alert_config, http_server, notification
from patience import HANG_S
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug import Request, Response

from zenith_protocol.alerts import AlertRule, AlertType, Notification
from zenith_protocol.codec import decode_alert_notification
from zenith_protocol.errors import NotFoundError
from zenith_sdk.alerts.channels import (
    DiscordChannel,
    MisconfiguredChannel,
    RetryPolicy,
    SignedWebhookChannel,
    SlackChannel,
    configured_channels,
    send_test,
)
from zenith_sdk.alerts.evaluate import QueueReading, Snapshot, evaluate
from zenith_sdk.alerts.messages import Message

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
SLACK_PATH = "/services/T000/B000/slack-token-path"
FAST = RetryPolicy(timeout_s=HANG_S, retries=2, backoff_s=0.01)


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with http_server() as running:
        yield running


def _posted_json(server: HTTPServer, index: int = 0) -> dict[str, object]:
    request, _ = server.log[index]
    document = json.loads(request.get_data())
    assert isinstance(document, dict)
    return document


def _our_log(caplog: pytest.LogCaptureFixture) -> str:
    """What Zenith logged (the test receivers log their requests too)."""
    lines = [record.getMessage() for record in caplog.records if record.name.startswith("zenith_sdk")]
    assert lines, "the channel logged nothing"
    return "\n".join(lines)


def test_slack_posts_text_and_blocks_with_the_idempotency_key_in_the_footer(server: HTTPServer) -> None:
    server.expect_oneshot_request(SLACK_PATH, method="POST").respond_with_data("ok")
    n = notification(rule_name="Backlog <!channel> & co", runbook_url="https://wiki.example/runbooks/backlog")
    delivery = SlackChannel("slack", server.url_for(SLACK_PATH), policy=FAST).send(n)
    assert (delivery.ok, delivery.attempts, delivery.status, delivery.error) == (True, 1, 200, None)
    posted = _posted_json(server)
    text = str(posted["text"])
    assert "Backlog &lt;!channel&gt; &amp; co" in text  # data never becomes a Slack mention
    assert "<!channel>" not in json.dumps(posted)
    assert "queue:q00" in text and "&gt;= 1000" in text and "for 12m" in text and "critical" in text
    assert "https://wiki.example/runbooks/backlog" in text
    blocks = posted["blocks"]
    assert isinstance(blocks, list)
    assert blocks[-1]["type"] == "context" and n.id in blocks[-1]["elements"][0]["text"]
    assert text.rstrip().endswith(f"zenith alert {n.id} at 2026-05-28T20:26:40Z")


def test_discord_posts_content_and_an_embed_whose_footer_has_the_key(server: HTTPServer) -> None:
    server.expect_oneshot_request("/api/webhooks/1/discord-token", method="POST").respond_with_data("", status=204)
    n = notification(kind="resolved", subjects=2)
    delivery = DiscordChannel("discord", server.url_for("/api/webhooks/1/discord-token"), policy=FAST).send(n)
    assert (delivery.ok, delivery.status) == (True, 204)
    posted = _posted_json(server)
    assert str(posted["content"]).startswith("[RESOLVED] Queue backlog: 2 subjects")
    embed = posted["embeds"][0]  # type: ignore[index]
    assert embed["footer"]["text"] == f"zenith alert {n.id} at 2026-05-28T20:26:40Z"
    assert "queue:q01" in embed["description"]
    assert posted["allowed_mentions"] == {"parse": []}


def test_signed_webhook_posts_the_notification_with_a_standard_webhooks_signature(server: HTTPServer) -> None:
    server.expect_oneshot_request("/hooks/zenith", method="POST").respond_with_data("thanks")
    n = notification(subjects=3)
    delivery = SignedWebhookChannel("webhook:ops", server.url_for("/hooks/zenith"), secret=SECRET, policy=FAST).send(n)
    assert delivery.ok
    request, _ = server.log[0]
    headers = dict(request.headers)
    assert request.headers["webhook-id"] == n.id
    assert request.headers["content-type"] == "application/json"
    Webhook(SECRET).verify(request.get_data(), headers)  # raises when the signature is wrong
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(request.get_data(), headers)
    assert decode_alert_notification(request.get_data()) == n


def test_a_webhook_without_secret_is_sent_unsigned(server: HTTPServer) -> None:
    server.expect_oneshot_request("/plain").respond_with_data("ok")
    assert SignedWebhookChannel("webhook:x", server.url_for("/plain"), secret=None, policy=FAST).send(notification()).ok
    request, _ = server.log[0]
    assert request.headers["webhook-id"] and "webhook-signature" not in request.headers


def test_a_non_ascii_key_is_percent_encoded_in_the_header_and_still_verifies(server: HTTPServer) -> None:
    server.expect_oneshot_request("/hooks").respond_with_data("ok")
    n = notification().model_copy(update={"id": "backlog:queue:größe:3"})
    assert SignedWebhookChannel("webhook:x", server.url_for("/hooks"), secret=SECRET, policy=FAST).send(n).ok
    request, _ = server.log[0]
    assert request.headers["webhook-id"] == "backlog:queue:gr%C3%B6%C3%9Fe:3"
    Webhook(SECRET).verify(request.get_data(), dict(request.headers))


def test_500_then_200_is_retried_and_delivered_on_the_second_attempt(server: HTTPServer) -> None:
    server.expect_ordered_request("/hook").respond_with_data("busy", status=500)
    server.expect_ordered_request("/hook").respond_with_data("ok")
    delivery = SlackChannel("slack", server.url_for("/hook"), policy=FAST).send(notification())
    assert (delivery.ok, delivery.attempts, delivery.status) == (True, 2, 200)
    assert len(server.log) == 2


def test_a_retried_webhook_keeps_its_id_and_is_signed_again(server: HTTPServer) -> None:
    server.expect_ordered_request("/hook").respond_with_data("busy", status=503)
    server.expect_ordered_request("/hook").respond_with_data("ok")
    n = notification()
    assert SignedWebhookChannel("webhook:x", server.url_for("/hook"), secret=SECRET, policy=FAST).send(n).attempts == 2
    for request, _ in server.log:
        assert request.headers["webhook-id"] == n.id
        Webhook(SECRET).verify(request.get_data(), dict(request.headers))


def test_400_is_not_retried_and_the_error_names_the_status_but_not_the_url_path(server: HTTPServer) -> None:
    server.expect_request(SLACK_PATH).respond_with_data("invalid_payload", status=400)
    delivery = SlackChannel("slack", server.url_for(SLACK_PATH), policy=FAST).send(notification())
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 400)
    assert delivery.error == f"HTTP 400 from http://127.0.0.1:{server.port}/***: invalid_payload"
    assert len(server.log) == 1


def test_retries_stop_after_the_budget_and_say_so(server: HTTPServer) -> None:
    server.expect_request("/hook").respond_with_data("down", status=502)
    delivery = DiscordChannel("discord", server.url_for("/hook"), policy=FAST).send(notification())
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 3, 502)
    assert delivery.error is not None and delivery.error.endswith("(gave up after 3 attempts)")
    assert len(server.log) == 3


def test_429_waits_as_long_as_retry_after_asks(server: HTTPServer) -> None:
    server.expect_ordered_request("/hook").respond_with_data("slow down", status=429, headers={"Retry-After": "7"})
    server.expect_ordered_request("/hook").respond_with_data("ok")
    pauses: list[float] = []
    channel = SlackChannel("slack", server.url_for("/hook"), policy=FAST, sleep=pauses.append)
    delivery = channel.send(notification())
    assert (delivery.ok, delivery.attempts, pauses) == (True, 2, [7.0])


def test_429_asking_for_more_than_the_channel_waits_is_not_retried(server: HTTPServer) -> None:
    server.expect_request("/hook").respond_with_data("later", status=429, headers={"Retry-After": "3600"})
    pauses: list[float] = []
    delivery = SlackChannel("slack", server.url_for("/hook"), policy=FAST, sleep=pauses.append).send(notification())
    assert (delivery.ok, delivery.attempts, delivery.status, pauses) == (False, 1, 429, [])
    assert delivery.error is not None and "retry after 3600 s" in delivery.error


def test_backoff_grows_and_is_jittered_within_its_step() -> None:
    policy = RetryPolicy(backoff_s=1.0, max_wait_s=30.0)
    for retry, step in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)):
        pauses = {policy.backoff(retry) for _ in range(20)}
        assert all(step / 2 <= pause <= step for pause in pauses)
        assert len(pauses) > 1


def test_a_hanging_receiver_fails_after_its_timeout_while_another_channel_goes_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered, release = threading.Event(), threading.Event()

    def hang(request: Request) -> Response:
        entered.set()
        release.wait(HANG_S)
        return Response("too late")

    caplog.set_level(logging.INFO, logger="zenith_sdk.alerts")
    with http_server() as hanging, http_server() as healthy, ThreadPoolExecutor(2) as pool:
        hanging.expect_request("/services/hang-secret-path").respond_with_handler(hang)
        healthy.expect_request("/api/webhooks/ok").respond_with_data("", status=204)
        hang_policy = RetryPolicy(timeout_s=2, retries=1, backoff_s=0.01)
        slow = SlackChannel("slack", hanging.url_for("/services/hang-secret-path"), policy=hang_policy)
        fast = DiscordChannel("discord", healthy.url_for("/api/webhooks/ok"), policy=FAST)
        try:
            slow_future = pool.submit(slow.send, notification())
            assert entered.wait(HANG_S), "the hanging receiver never got the request"
            fast_delivery = pool.submit(fast.send, notification()).result(HANG_S)
            still_waiting = not slow_future.done()
            slow_delivery = slow_future.result(HANG_S)
        finally:
            release.set()
    assert fast_delivery.ok and still_waiting  # delivered while the other channel was still stuck
    assert (slow_delivery.ok, slow_delivery.status) == (False, None)
    assert slow_delivery.attempts == 2  # each attempt is cut off by the timeout, then retried
    assert slow_delivery.error is not None and "no answer from http://127.0.0.1:" in slow_delivery.error
    assert "within 2 s" in slow_delivery.error
    assert "hang-secret-path" not in slow_delivery.error + _our_log(caplog)


def test_an_unreachable_url_fails_with_a_redacted_error_log_and_repr(caplog: pytest.LogCaptureFixture) -> None:
    with http_server() as server:
        url = server.url_for("/services/T1/B2/unreachable-token?key=query-secret")
    caplog.set_level(logging.INFO, logger="zenith_sdk.alerts")
    channel = SlackChannel("slack", url, policy=RetryPolicy(timeout_s=HANG_S, retries=1, backoff_s=0))
    delivery = channel.send(notification())
    assert (delivery.ok, delivery.attempts) == (False, 2)
    assert delivery.error is not None and delivery.error.startswith("could not reach http://127.0.0.1:")
    for shown in (delivery.error, _our_log(caplog), repr(channel), repr(delivery)):
        assert "unreachable-token" not in shown and "query-secret" not in shown and "T1" not in shown
    assert "/***" in repr(channel)


def test_a_bad_url_is_not_retried() -> None:
    channel = SlackChannel("slack", "ftp://files.example/secret-path", policy=FAST)
    delivery = channel.send(notification())
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert delivery.error is not None and "ftp://files.example/***" in delivery.error
    assert "secret-path" not in delivery.error


class _Broken(SlackChannel):
    def _request(self, n: Notification, message: Message | None) -> tuple[bytes, dict[str, str]]:
        raise RuntimeError(f"cannot build a request for {self.name} at https://hooks.example/services/broken-secret")


def test_a_bug_in_a_channel_becomes_a_failed_delivery(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="zenith_sdk.alerts")
    delivery = _Broken("slack", "https://hooks.example/services/broken-secret", policy=FAST).send(notification())
    assert (delivery.ok, delivery.attempts) == (False, 1)
    assert delivery.error is not None and delivery.error.startswith("unexpected RuntimeError at ")
    assert delivery.error.endswith("cannot build a request for slack at https://hooks.example/***")
    assert "broken-secret" not in _our_log(caplog)


def test_channels_share_a_client_the_caller_owns(server: HTTPServer) -> None:
    server.expect_request("/hook").respond_with_data("ok")
    with httpx.Client() as client:
        channel = SlackChannel("slack", server.url_for("/hook"), policy=FAST, client=client)
        assert channel.send(notification()).ok and channel.send(notification()).ok
        assert not client.is_closed


def test_configured_channels_lists_enabled_channels_and_flags_unusable_ones(server: HTTPServer) -> None:
    config = alert_config(
        {
            "channels": {
                "slack": {"enabled": True, "webhookUrl": server.url_for("/slack"), "timeoutSeconds": 2, "retries": 0},
                "discord": {"enabled": False, "webhookUrl": server.url_for("/discord")},
                "email": {"enabled": True, "smtpHost": "127.0.0.1"},
                "webhooks": [
                    {"name": "ops", "url": server.url_for("/ops"), "secret": SECRET},
                    {"name": "bad", "url": server.url_for("/bad"), "secret": "whsec_not*base64"},
                ],
            }
        }
    )
    channels = configured_channels(config)
    assert sorted(channels) == ["email", "slack", "webhook:bad", "webhook:ops"]
    slack = channels["slack"]
    assert isinstance(slack, SlackChannel) and slack.policy.timeout_s == 2 and slack.policy.retries == 0
    assert isinstance(channels["webhook:ops"], SignedWebhookChannel)
    for name, problem in (("email", "email: to, from not set"), ("webhook:bad", "webhook:bad: a webhook secret")):
        channel = channels[name]
        assert isinstance(channel, MisconfiguredChannel)
        delivery = channel.send(notification())
        assert (delivery.ok, delivery.attempts) == (False, 0)
        assert delivery.error is not None and delivery.error.startswith(problem)
        assert "not*base64" not in delivery.error


def test_legacy_node_settings_deliver_to_slack(server: HTTPServer) -> None:
    server.expect_oneshot_request("/services/legacy").respond_with_data("ok")
    config = alert_config({"channels": {"slack": {"enabled": True, "webhookUrl": server.url_for("/services/legacy")}}})
    channel = configured_channels(config)["slack"]
    assert channel.send(notification()).ok
    assert "queue:q00" in str(_posted_json(server)["text"])


def test_send_test_reaches_a_channel_even_before_it_is_enabled(server: HTTPServer) -> None:
    server.expect_oneshot_request("/ops").respond_with_data("ok")
    config = alert_config(
        {"channels": {"webhooks": [{"name": "ops", "enabled": False, "url": server.url_for("/ops"), "secret": SECRET}]}}
    )
    delivery = send_test(config, "webhook:ops", now_ms=AT_MS)
    assert (delivery.channel, delivery.ok) == ("webhook:ops", True)
    request, _ = server.log[0]
    sent = Notification.model_validate(Webhook(SECRET).verify(request.get_data(), dict(request.headers)))
    assert (sent.id, sent.rule_id, sent.at_ms, sent.channels) == (
        f"test:webhook:ops:{AT_MS}",
        "test",
        AT_MS,
        ["webhook:ops"],
    )


def test_send_test_names_the_configured_channels_when_the_name_is_unknown() -> None:
    config = alert_config({"channels": {"slack": {"enabled": True, "webhookUrl": "https://hooks.slack.com/x"}}})
    with pytest.raises(NotFoundError, match="alert channel 'teams' not found; configured channels: slack"):
        send_test(config, "teams")


def test_fifty_queues_crossing_a_threshold_in_one_evaluation_make_one_post_per_channel(server: HTTPServer) -> None:
    server.expect_request("/slack").respond_with_data("ok")
    server.expect_request("/discord").respond_with_data("", status=204)
    rule = AlertRule(id="high_backlog", name="Queue backlog", type=AlertType.BACKLOG, threshold=1000)
    queues = {f"q{index:02d}": QueueReading(name=f"q{index:02d}", waiting=2000 + index) for index in range(50)}
    firing = evaluate([rule], Snapshot(taken_ms=AT_MS, queues=queues), {}, [], [], AT_MS)
    (n,) = firing.notifications
    config = alert_config(
        {
            "channels": {
                "slack": {"enabled": True, "webhookUrl": server.url_for("/slack")},
                "discord": {"enabled": True, "webhookUrl": server.url_for("/discord")},
            }
        }
    )
    deliveries = [channel.send(n) for channel in configured_channels(config).values()]
    assert [(delivery.channel, delivery.ok) for delivery in deliveries] == [("slack", True), ("discord", True)]
    assert sorted(request.path for request, _ in server.log) == ["/discord", "/slack"]
    slack_text = str(_posted_json(server, 0)["text"])
    assert "- queue:q09: 2009" in slack_text and "queue:q10" not in slack_text and "and 40 more" in slack_text
    assert n.id in slack_text

    server.clear_log()
    later = AT_MS + 12 * 60_000
    calm = {name: QueueReading(name=name, waiting=0) for name in queues}
    resolved = evaluate([rule], Snapshot(taken_ms=later, queues=calm), firing.states, [], [], later)
    (done,) = resolved.notifications
    assert configured_channels(config)["slack"].send(done).ok
    assert "- queue:q00: 0, fired from 2026-05-28T20:26:40Z for 12m" in str(_posted_json(server, 0)["text"])
