"""Senders on a real Redis with real receivers on 127.0.0.1: one delivery per notification, across senders and kills."""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from alert_receivers import MailBox, http_server, notification, smtp_server
from cli_run import finish, prefix_options, start
from patience import HANG_S
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from zenith_protocol import KeySpace, Notification, encode_alert_notification
from zenith_sdk.alerts import AlertService, Sender, channel_health
from zenith_sdk.alerts.sender import GROUP
from zenith_sdk.alerts.store import OUTBOX_FIELD

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def _url(r: redis.Redis) -> str:
    kwargs = r.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with http_server() as running:
        yield running


class Receiver:
    """Records every webhook POST; ``hold`` makes the first request of each id wait until released."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()
        self.hold = 0
        self.held: set[str] = set()
        self.arrived: list[tuple[str, threading.Event]] = []
        self.arrival = threading.Condition(self.lock)

    def __call__(self, request: Request) -> Response:
        Webhook(SECRET).verify(request.get_data(), dict(request.headers))
        webhook_id = request.headers["webhook-id"]
        release = threading.Event()
        with self.lock:
            self.ids.append(webhook_id)
            hold = self.hold > 0 and webhook_id not in self.held
            if hold:
                self.hold -= 1
                self.held.add(webhook_id)
                self.arrived.append((webhook_id, release))
                self.arrival.notify_all()
        if hold:
            release.wait(HANG_S)
        return Response("ok")

    def wait_arrival(self, count: int) -> tuple[str, threading.Event]:
        with self.arrival:
            assert self.arrival.wait_for(lambda: len(self.arrived) >= count, HANG_S), "no held request arrived"
            return self.arrived[count - 1]


def _configure(r: redis.Redis, space: KeySpace, server: HTTPServer, receiver: Receiver) -> None:
    server.expect_request("/hook", method="POST").respond_with_handler(receiver)
    config = {"channels": {"webhooks": [{"name": "ops", "url": server.url_for("/hook"), "secret": SECRET}]}}
    r.set(space.alert_config(), json.dumps(config))


def _fill(r: redis.Redis, space: KeySpace, count: int) -> list[str]:
    ids = []
    for index in range(count):
        n = notification().model_copy(update={"id": f"backlog:queue:q{index:02d}:1"})
        r.xadd(space.alerts_outbox(), {OUTBOX_FIELD: encode_alert_notification(n)})
        ids.append(n.id)
    return ids


def _pending(r: redis.Redis, space: KeySpace) -> int:
    return int(r.xpending(space.alerts_outbox(), GROUP)["pending"])


def test_two_senders_deliver_each_notification_once(r: redis.Redis, keyspace: KeySpace, server: HTTPServer) -> None:
    receiver = Receiver()
    _configure(r, keyspace, server, receiver)
    ids = _fill(r, keyspace, 40)
    senders = [Sender(redis.Redis(connection_pool=r.connection_pool), keyspace=keyspace) for _ in range(2)]
    done = threading.Event()

    def run(sender: Sender) -> None:
        while not done.is_set():
            sender.run_once(block=True)

    threads = [threading.Thread(target=run, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    try:
        for _ in range(int(HANG_S * 10)):
            with receiver.lock:
                if len(receiver.ids) >= len(ids) and _pending(r, keyspace) == 0:
                    break
            threading.Event().wait(0.1)
    finally:
        done.set()
        for thread in threads:
            thread.join(HANG_S)
        for sender in senders:
            sender.close()

    assert sorted(receiver.ids) == sorted(ids)  # each once
    assert channel_health(r, keyspace=keyspace)["webhook:ops"].consecutive_failures == 0
    assert r.exists(keyspace.alerts_delivered(ids[0], "webhook:ops"))


def test_a_sender_killed_mid_send_20_times_loses_nothing(
    r: redis.Redis, keyspace: KeySpace, server: HTTPServer
) -> None:
    kills = 20
    receiver = Receiver()
    receiver.hold = kills
    _configure(r, keyspace, server, receiver)
    ids = _fill(r, keyspace, kills)
    argv = ["alerts", "run", "--no-evaluate", "--claim-idle", "0.3", "--redis", _url(r), *prefix_options(keyspace)]

    for kill in range(1, kills + 1):
        process = start(argv)
        try:
            _held_id, release = receiver.wait_arrival(kill)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            finish(process)
        release.set()
    process = start(argv)
    try:
        for _ in range(int(HANG_S * 10)):
            with receiver.lock:
                if set(receiver.ids) == set(ids) and _pending(r, keyspace) == 0:
                    break
            threading.Event().wait(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        result = finish(process)
    assert "Traceback" not in result.stderr

    received = Counter(receiver.ids)
    assert set(received) == set(ids)  # nothing lost
    assert max(received.values()) <= 2  # at most one redelivery of each, under its same webhook-id
    assert sum(received.values()) - len(ids) <= kills
    assert {held for held, _ in receiver.arrived} <= {i for i, n in received.items() if n == 2}
    assert _pending(r, keyspace) == 0


def test_fifty_queues_crossing_in_one_evaluation_make_one_message_per_channel(
    r: redis.Redis, keyspace: KeySpace, server: HTTPServer
) -> None:
    box = MailBox()
    for path in ("/slack", "/discord", "/hook"):
        server.expect_request(path, method="POST").respond_with_data("ok")
    r.set(keyspace.alert_rules(), '[{"id":"backlog","name":"Backlog","type":"backlog","threshold":5}]')
    for index in range(50):
        r.lpush(keyspace.queue(f"q{index:02d}"), *["{}"] * 6)
    with smtp_server(box) as smtp:
        config = {
            "channels": {
                "slack": {"enabled": True, "webhookUrl": server.url_for("/slack")},
                "discord": {"enabled": True, "webhookUrl": server.url_for("/discord")},
                "email": {
                    "enabled": True,
                    "smtpHost": "127.0.0.1",
                    "smtpPort": smtp.port,
                    "security": "none",
                    "from": "zenith@example.com",
                    "to": "ops@example.com",
                },
                "webhooks": [{"name": "ops", "url": server.url_for("/hook"), "secret": SECRET}],
            },
        }
        r.set(keyspace.alert_config(), json.dumps(config))
        service = AlertService(r, keyspace=keyspace)
        report = service.evaluate_once()
        sent = service.senders[0].run_once()
        service.senders[0].close()

    assert report.applied.notifications == 1 and len(report.evaluation.transitions) == 50
    assert [entry.outcomes for entry in sent] == [
        {"discord": "sent", "email": "sent", "slack": "sent", "webhook:ops": "sent"}
    ]
    paths = Counter(request.path for request, _ in server.log)
    assert paths == {"/slack": 1, "/discord": 1, "/hook": 1}
    assert len(box.received) == 1
    slack = json.loads(next(req for req, _ in server.log if req.path == "/slack").get_data())
    assert "and 40 more" in slack["text"]
    hook = Notification.model_validate_json(next(req for req, _ in server.log if req.path == "/hook").get_data())
    assert len(hook.subjects) == 50 and hook.id == "backlog:queue:q00:1"


def test_rules_and_settings_as_the_node_console_stored_them_notify(
    r: redis.Redis, keyspace: KeySpace, server: HTTPServer
) -> None:
    server.expect_request("/services/T000/B000/XXXX", method="POST").respond_with_data("ok")
    # WIRE_FACTS 6: the defaults, written on the console's first edit, and its channel settings.
    r.set(
        keyspace.alert_rules(),
        '[{"id":"high_failure","name":"High failure count","type":"failure","threshold":50,"cooldownMinutes":30},'
        '{"id":"high_backlog","name":"Queue backlog","type":"backlog","threshold":1000,"cooldownMinutes":60},'
        '{"id":"no_workers","name":"No workers online","type":"worker_lost","threshold":1,"cooldownMinutes":15}]',
    )
    webhook = server.url_for("/services/T000/B000/XXXX")
    r.set(keyspace.alert_config(), json.dumps({"channels": {"slack": {"enabled": True, "webhookUrl": webhook}}}))
    r.lpush(keyspace.failed("emails"), *["{}"] * 60)

    service = AlertService(r, keyspace=keyspace)
    report = service.evaluate_once()
    sender = service.senders[0]
    entries = [*sender.run_once(), *sender.run_once(), *sender.run_once()]
    sender.close()

    kinds = sorted((n.rule_id, n.kind.value) for n in report.evaluation.notifications)
    assert kinds == [("high_failure", "firing"), ("no_workers", "firing")]  # 60 >= 50; no worker at all
    assert [entry.outcomes for entry in entries] == [{"slack": "sent"}] * 2
    texts = [json.loads(request.get_data())["text"] for request, _ in server.log]
    failure = next(text for text in texts if "High failure count" in text)
    assert "queue:emails" in failure and "60" in failure and "50" in failure


def test_a_redelivered_entry_skips_channels_already_done_and_health_records_failures(
    r: redis.Redis, keyspace: KeySpace, server: HTTPServer
) -> None:
    server.expect_request("/slack", method="POST").respond_with_data("ok")
    server.expect_request("/discord", method="POST").respond_with_data("no", status=400)
    config = {
        "channels": {
            "slack": {"enabled": True, "webhookUrl": server.url_for("/slack")},
            "discord": {"enabled": True, "webhookUrl": server.url_for("/discord"), "retries": 0},
        }
    }
    r.set(keyspace.alert_config(), json.dumps(config))
    [notification_id] = _fill(r, keyspace, 1)
    r.set(keyspace.alerts_delivered(notification_id, "slack"), "1", ex=60)  # done before a crash
    sender = Sender(r, keyspace=keyspace)

    [entry] = sender.run_once()
    sender.close()

    assert entry.outcomes == {"slack": "done", "discord": "failed"}
    assert [request.path for request, _ in server.log] == ["/discord"]
    assert _pending(r, keyspace) == 0  # given up after its retries: acknowledged
    health = channel_health(r, keyspace=keyspace)["discord"]
    assert health.consecutive_failures == 1 and health.last_error is not None and "/discord" not in health.last_error


def test_zenith_alerts_run_evaluates_and_sends(r: redis.Redis, keyspace: KeySpace, server: HTTPServer) -> None:
    receiver = Receiver()
    _configure(r, keyspace, server, receiver)
    r.set(keyspace.alert_rules(), '[{"id":"backlog","name":"Backlog","type":"backlog","threshold":2}]')
    r.lpush(keyspace.queue("emails"), *["{}"] * 3)
    process = start(["alerts", "run", "--interval", "0.2", "--redis", _url(r), *prefix_options(keyspace)])
    try:
        for _ in range(int(HANG_S * 10)):
            with receiver.lock:
                if receiver.ids:
                    break
            threading.Event().wait(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        result = finish(process)

    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert receiver.ids == ["backlog:queue:emails:1"]
