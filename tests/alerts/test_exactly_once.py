"""Four evaluators and two senders at once over 1,000 random condition flips: each notified transition is
notified once.

The evaluators are AlertService objects on their own connections, each evaluating in a loop of
its own thread while another thread flips queues between empty and backed up. Afterwards the
lifecycle events (one per transition applied) and the outbox are compared: every transition that
notifies is in the outbox exactly once, none is there twice, and each subject's transitions form
one unbroken chain of sequence numbers (no change lost, none applied twice). With two senders
running meanwhile, a signed webhook receiver gets each notification of the outbox exactly once.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections import Counter

import redis
from alert_receivers import http_server
from event_stream import outbox_notifications, stream_events
from patience import HANG_S
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from zenith_protocol import AlertRule, EventType, KeySpace
from zenith_sdk.alerts import AlertService, Sender, edit_rules
from zenith_sdk.alerts.sender import GROUP

QUEUES = [f"q{index}" for index in range(8)]
FLIPS = 1000
EVALUATORS = 4


class _Evaluations:
    """Counts evaluations, so the flips can wait for the evaluators and many flips are seen under any load."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def add(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_past(self, count: int) -> int:
        with self.changed:
            self.changed.wait_for(lambda: self.count > count, HANG_S)
            return self.count


def _flip(r: redis.Redis, space: KeySpace, seed: int, evaluations: _Evaluations) -> None:
    """Flip queues between empty and backed up, letting at least one evaluation run every ten flips."""
    rng = random.Random(seed)
    backed_up: set[str] = set()
    seen = 0
    for flip in range(FLIPS):
        if flip % 10 == 0:
            seen = evaluations.wait_past(seen)
        queue = rng.choice(QUEUES)
        if queue in backed_up:
            r.delete(space.queue(queue))
            backed_up.discard(queue)
        else:
            r.lpush(space.queue(queue), *['{"id":"x","type":"json","data":"{}","createdAt":1}'] * 3)
            backed_up.add(queue)
        if rng.random() < 0.3:
            threading.Event().wait(0.002)  # let some states last long enough to be seen


SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


def _evaluate(
    r: redis.Redis, space: KeySpace, flipping: threading.Event, evaluations: _Evaluations, errors: list[BaseException]
) -> None:
    """Evaluate in a loop on a connection of its own until the flips are over, then once more."""
    client = redis.Redis(connection_pool=redis.ConnectionPool(**r.connection_pool.connection_kwargs))
    service = AlertService(client, keyspace=space, send=False, rediscover_every=1000)
    try:
        while not flipping.is_set():
            service.evaluate_once()
            evaluations.add()
        service.evaluate_once()  # one more look at the final conditions
    except BaseException as exc:  # reported by the test
        errors.append(exc)
    finally:
        client.close()


class _Senders:
    """Two senders delivering the outbox to a signed webhook receiver, each in a thread of its own."""

    def __init__(self, r: redis.Redis, space: KeySpace, server: HTTPServer, errors: list[BaseException]) -> None:
        self.r, self.space, self.errors = r, space, errors
        self.received: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        server.expect_request("/hook", method="POST").respond_with_handler(self.receive)
        config = {"channels": {"webhooks": [{"name": "ops", "url": server.url_for("/hook"), "secret": SECRET}]}}
        r.set(space.alert_config(), json.dumps(config))
        self.senders = [Sender(redis.Redis(connection_pool=r.connection_pool), keyspace=space) for _ in range(2)]
        self.threads = [threading.Thread(target=self.send, args=(sender,)) for sender in self.senders]

    def receive(self, request: Request) -> Response:
        Webhook(SECRET).verify(request.get_data(), dict(request.headers))
        with self.lock:
            self.received.append(request.headers["webhook-id"])
        return Response("ok")

    def send(self, sender: Sender) -> None:
        try:
            while not self.stop.is_set():
                sender.run_once(block=True)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def delivered(self) -> bool:
        with self.lock:
            count = len(self.received)
        outbox = self.space.alerts_outbox()
        return count >= self.r.xlen(outbox) and int(self.r.xpending(outbox, GROUP)["pending"]) == 0

    def finish(self) -> None:
        """Let the senders deliver what is left, then stop them."""
        for _ in range(int(HANG_S * 20)):
            if self.errors or self.delivered():
                break
            threading.Event().wait(0.05)
        self.stop.set()
        for thread in self.threads:
            thread.join(HANG_S)
        for sender in self.senders:
            sender.close()


def test_four_evaluators_and_two_senders_notify_each_transition_once(r: redis.Redis, keyspace: KeySpace) -> None:
    rule = AlertRule(id="backlog", name="Backlog", type="backlog", threshold=3, queue="q*")
    edit_rules(r, lambda _rules: [rule], keyspace=keyspace)
    for queue in QUEUES:
        r.sadd(keyspace.queue_index(), queue)
    flipping = threading.Event()
    evaluations = _Evaluations()
    errors: list[BaseException] = []
    with http_server() as server:
        sending = _Senders(r, keyspace, server, errors)
        evaluators = [
            threading.Thread(target=_evaluate, args=(r, keyspace, flipping, evaluations, errors))
            for _ in range(EVALUATORS)
        ]
        for thread in [*evaluators, *sending.threads]:
            thread.start()
        _flip(r, keyspace, seed=7, evaluations=evaluations)
        flipping.set()
        for thread in evaluators:
            thread.join(HANG_S)
        sending.finish()
    assert not errors, errors
    outbox_ids = [notification.id for notification in outbox_notifications(r, keyspace)]
    assert int(r.xpending(keyspace.alerts_outbox(), GROUP)["pending"]) == 0
    assert Counter(sending.received) == Counter(outbox_ids)  # each notification delivered once: none lost, none twice

    transitions = [event for event in stream_events(r, keyspace) if event.type == EventType.ALERT]
    notified = Counter((event.subject, event.seq) for event in transitions if event.kind)
    sent = Counter(
        (subject.subject, subject.seq)
        for notification in outbox_notifications(r, keyspace)
        for subject in notification.subjects
    )
    assert len(notified) > 50, "the flips should make many notified transitions"
    assert sent == notified  # each notified transition exactly once: none lost, none twice
    assert max(sent.values()) == 1
    for queue in QUEUES:
        chain = sorted(
            (event.seq or 0, event.from_state, event.to_state)
            for event in transitions
            if event.subject == f"queue:{queue}"
        )
        assert [seq for seq, _from, _to in chain] == list(range(1, len(chain) + 1)), queue
        for (_seq, _from, before), (_next, after_from, _to) in zip(chain, chain[1:]):
            assert after_from == before, (queue, chain)
