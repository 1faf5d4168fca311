"""Four evaluators at once over 1,000 random condition flips: each notified transition reaches the outbox once.

The evaluators are AlertService objects on their own connections, each evaluating in a loop of
its own thread while another thread flips queues between empty and backed up. Afterwards the
lifecycle events (one per transition applied) and the outbox are compared: every transition that
notifies is in the outbox exactly once, none is there twice, and each subject's transitions form
one unbroken chain of sequence numbers (no change lost, none applied twice).
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import redis
from event_stream import outbox_notifications, stream_events
from patience import HANG_S

from zenith_protocol import AlertRule, EventType, KeySpace
from zenith_sdk.alerts import AlertService, edit_rules

QUEUES = [f"q{index}" for index in range(8)]
FLIPS = 1000
EVALUATORS = 4


def _flip(r: redis.Redis, space: KeySpace, seed: int) -> None:
    rng = random.Random(seed)
    backed_up: set[str] = set()
    for _ in range(FLIPS):
        queue = rng.choice(QUEUES)
        if queue in backed_up:
            r.delete(space.queue(queue))
            backed_up.discard(queue)
        else:
            r.lpush(space.queue(queue), *['{"id":"x","type":"json","data":"{}","createdAt":1}'] * 3)
            backed_up.add(queue)
        if rng.random() < 0.3:
            threading.Event().wait(0.002)  # let some states last long enough to be seen


def test_four_evaluators_notify_each_transition_once(r: redis.Redis, keyspace: KeySpace) -> None:
    rule = AlertRule(id="backlog", name="Backlog", type="backlog", threshold=3, queue="q*")
    edit_rules(r, lambda _rules: [rule], keyspace=keyspace)
    for queue in QUEUES:
        r.sadd(keyspace.queue_index(), queue)
    done = threading.Event()
    errors: list[BaseException] = []

    def evaluate() -> None:
        client = redis.Redis(connection_pool=redis.ConnectionPool(**r.connection_pool.connection_kwargs))
        service = AlertService(client, keyspace=keyspace, send=False, rediscover_every=1000)
        try:
            while not done.is_set():
                service.evaluate_once()
            service.evaluate_once()  # one more look at the final conditions
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=evaluate) for _ in range(EVALUATORS)]
    for thread in threads:
        thread.start()
    _flip(r, keyspace, seed=7)
    done.set()
    for thread in threads:
        thread.join(HANG_S)
    assert not errors, errors

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
