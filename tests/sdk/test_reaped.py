"""Putting back at once what a worker process known to have ended held (its supervisor saw it die)."""

from __future__ import annotations

import redis
from event_stream import stream_events
from worker_helpers import dead_worker, lrange, node_raws

from zenith_protocol import EventType, KeySpace
from zenith_sdk.events import EventEmitter
from zenith_sdk.worker._recovery import put_back_reaped


def test_a_reaped_worker_is_recovered_at_once_though_its_heartbeat_still_exists(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    emails, reports = node_raws("e", 3), node_raws("r", 2)
    # Registered a moment ago, for emails and reports; its heartbeat has not expired: it was killed.
    dead_worker(r, keyspace, "sup-0-4242", {"emails": emails, "reports": reports}, age_ms=0)
    r.set(keyspace.worker("sup-0-4242"), "{}", ex=30)
    events = EventEmitter(r, keyspace=keyspace)

    moved = put_back_reaped(r, "sup-0-4242", ["emails"], keyspace=keyspace, events=events)
    again = put_back_reaped(r, "sup-0-4242", ["emails"], keyspace=keyspace, events=events)

    assert moved == {"emails": 3, "reports": 2}  # its registered queues too, not only those it was told
    assert again == {"emails": 0}
    assert sorted(lrange(r, keyspace.queue("emails"))) == sorted(emails)
    assert sorted(lrange(r, keyspace.queue("reports"))) == sorted(reports)
    assert r.exists(keyspace.worker("sup-0-4242"), keyspace.processing("emails", "sup-0-4242")) == 0
    assert r.zscore(keyspace.worker_index(), "sup-0-4242") is None
    assert r.hget(keyspace.worker_queues(), "sup-0-4242") is None
    recovered = [e for e in stream_events(r, keyspace) if e.type is EventType.RECOVERED]
    assert sorted((e.queue, e.count, e.worker_id, e.actor) for e in recovered) == [
        ("emails", 3, "sup-0-4242", "zenith-supervisor"),
        ("reports", 2, "sup-0-4242", "zenith-supervisor"),
    ]


def test_putting_back_leaves_other_workers_alone(r: redis.Redis, keyspace: KeySpace) -> None:
    mine, theirs = node_raws("m", 2), node_raws("t", 2)
    dead_worker(r, keyspace, "sup-0-1", {"emails": mine}, age_ms=0)
    dead_worker(r, keyspace, "sup-1-2", {"emails": theirs}, age_ms=0)

    assert put_back_reaped(r, "sup-0-1", ["emails"], keyspace=keyspace) == {"emails": 2}
    assert sorted(lrange(r, keyspace.processing("emails", "sup-1-2"))) == sorted(theirs)
    assert r.zscore(keyspace.worker_index(), "sup-1-2") is not None
