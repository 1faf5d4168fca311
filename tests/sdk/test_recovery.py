"""Recovery of in-flight jobs: dead workers found through the worker index, and orphaned processing
lists found by a sweep (workers that never registered, or whose registration is gone)."""

from __future__ import annotations

import json
import threading

import pytest
import redis
from event_stream import stream_events
from node_consumer import NodeConsumer, NodeJob
from patience import HANG_S
from wire_data import node_job
from worker_fixtures import StartWorker
from worker_helpers import Recorder, dead_worker, idle, lrange, node_raws, server_ms, wait_for

from zenith_protocol import EventType, JobEvent, KeySpace, WorkerStatus
from zenith_sdk.events import EventEmitter
from zenith_sdk.worker import App, JobContext, WorkerOptions, _runtime, recover_dead_workers
from zenith_sdk.worker._heartbeat import BusyState, HeartbeatLoop
from zenith_sdk.worker._recovery import find_orphans

# -- dead workers found through the index ---------------------------------------------------------


def test_recovery_puts_each_job_of_a_dead_worker_back_once(r: redis.Redis, keyspace: KeySpace) -> None:
    emails, reports = node_raws("e", 1100), node_raws("r", 4)  # more than two requeue batches of 500
    dead_worker(r, keyspace, "dead-1", {"emails": emails, "reports": reports}, age_ms=60_000)
    live = node_raws("live", 2)
    dead_worker(r, keyspace, "live-1", {"emails": live}, age_ms=60_000)
    r.set(keyspace.worker("live-1"), "{}", ex=30)  # its heartbeat still exists: alive, whatever the index says
    recent = node_raws("recent", 1)
    dead_worker(r, keyspace, "recent-1", {"emails": recent}, age_ms=0)
    barrier = threading.Barrier(2)
    results: list[dict[str, dict[str, int]]] = []
    errors: list[BaseException] = []

    def recover(actor: str) -> None:
        client = redis.Redis(connection_pool=r.connection_pool)
        try:
            barrier.wait(5)
            results.append(
                recover_dead_workers(client, keyspace, actor=actor, events=EventEmitter(client, keyspace=keyspace))
            )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=recover, args=(f"recoverer-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    moved = {"emails": 0, "reports": 0}
    for result in results:
        assert set(result) <= {"dead-1"}
        for queue, count in result.get("dead-1", {}).items():
            moved[queue] += count
    assert moved == {"emails": 1100, "reports": 4}
    assert sorted(lrange(r, keyspace.queue("emails"))) == sorted(emails)
    assert sorted(lrange(r, keyspace.queue("reports"))) == sorted(reports)
    assert r.exists(keyspace.processing("emails", "dead-1"), keyspace.processing("reports", "dead-1")) == 0
    assert lrange(r, keyspace.processing("emails", "live-1")) == list(reversed(live))
    assert lrange(r, keyspace.processing("emails", "recent-1")) == recent
    assert r.zscore(keyspace.worker_index(), "dead-1") is None
    assert r.zscore(keyspace.worker_index(), "live-1") is not None
    assert r.hget(keyspace.worker_queues(), "dead-1") is None
    recovered = [e for e in stream_events(r, keyspace) if e.type is EventType.RECOVERED]
    assert all(e.worker_id == "dead-1" and (e.actor or "").startswith("recoverer-") for e in recovered)
    counted = {"emails": 0, "reports": 0}
    for event in recovered:
        counted[event.queue] += event.count or 0
    assert counted == {"emails": 1100, "reports": 4}


def test_recovery_with_events_works_after_redis_lost_its_scripts(r: redis.Redis, keyspace: KeySpace) -> None:
    raws = node_raws("e", 2)
    dead_worker(r, keyspace, "dead-1", {"emails": raws}, age_ms=60_000)
    r.script_flush()

    result = recover_dead_workers(r, keyspace, actor="cold", events=EventEmitter(r, keyspace=keyspace))

    assert result == {"dead-1": {"emails": 2}}
    assert sorted(lrange(r, keyspace.queue("emails"))) == sorted(raws)
    (event,) = stream_events(r, keyspace)
    assert (event.type, event.worker_id, event.count, event.actor) == (EventType.RECOVERED, "dead-1", 2, "cold")


def test_recovery_keeps_the_groups_of_the_jobs_it_puts_back(r: redis.Redis, keyspace: KeySpace) -> None:
    # The job put back is still its group's one fetchable job: the group stays held, and the
    # job waiting behind it stays there until the job put back is done.
    grouped = node_job("g-job", "step", {}, created_at=1, groupId="tenant-1").encode()
    behind = node_job("g-next", "step", {}, created_at=2, groupId="tenant-1").encode()
    dead_worker(r, keyspace, "dead-1", {"emails": [grouped]}, age_ms=60_000)
    r.sadd(keyspace.group_active("emails"), "tenant-1", "tenant-2")
    r.rpush(keyspace.group_pending("emails", "tenant-1"), behind)

    assert recover_dead_workers(r, keyspace) == {"dead-1": {"emails": 1}}

    assert lrange(r, keyspace.queue("emails")) == [grouped]
    assert r.smembers(keyspace.group_active("emails")) == {b"tenant-1", b"tenant-2"}
    assert lrange(r, keyspace.group_pending("emails", "tenant-1")) == [behind]


def test_recovered_jobs_run_in_their_original_order(r: redis.Redis, keyspace: KeySpace) -> None:
    raws = node_raws("e", 4)  # fetched oldest first: e-0 is at the right end of the processing list
    dead_worker(r, keyspace, "dead-1", {"emails": raws}, age_ms=60_000)
    ran: list[NodeJob] = []

    recover_dead_workers(r, keyspace)
    NodeConsumer(r, keyspace, ["emails"], {"step": ran.append}).drain()

    assert [job.id for job in ran] == ["e-0", "e-1", "e-2", "e-3"]


def test_a_running_worker_recovers_a_dead_workers_jobs(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    record = Recorder()
    raws = node_raws("orphan", 3)
    dead_worker(r, keyspace, "dead-1", {"q": raws}, age_ms=60_000)

    worker = start_worker(
        App({"step": record}), queues=("q",), heartbeat_interval_s=0.05, heartbeat_ttl_s=2, recovery_interval_s=0.1
    )

    def recovered() -> list[JobEvent]:
        return [e for e in stream_events(r, keyspace) if e.type is EventType.RECOVERED]

    # The requeued jobs can run before the recoverer has written its event: wait for both.
    wait_for(lambda: len(record) == 3 and idle(r, keyspace, worker, "q") and recovered(), what="the orphans")
    assert sorted(record.ids()) == ["orphan-0", "orphan-1", "orphan-2"]
    assert r.zscore(keyspace.worker_index(), "dead-1") is None
    (event,) = recovered()
    assert (event.worker_id, event.actor, event.count, event.queue) == ("dead-1", worker.id, 3, "q")


# -- orphaned processing lists ---------------------------------------------------------------------


def _orphan(r: redis.Redis, space: KeySpace, worker_id: str, queue: str, raws: list[bytes]) -> None:
    """A processing list of a worker that never registered: no heartbeat, no index entry, no queue list."""
    r.lpush(space.processing(queue, worker_id), *raws)


def test_the_lists_of_a_worker_that_never_registered_are_recovered(r: redis.Redis, keyspace: KeySpace) -> None:
    lost, kept = node_raws("lost", 3), node_raws("kept", 2)
    _orphan(r, keyspace, "ghost-1", "emails", lost)
    _orphan(r, keyspace, "live-1", "emails", kept)
    r.set(keyspace.worker("live-1"), "{}", ex=30)  # alive: it has a heartbeat
    recent = node_raws("recent", 1)
    _orphan(r, keyspace, "recent-1", "emails", recent)
    r.zadd(keyspace.worker_index(), {"recent-1": server_ms(r)})  # beat just now; its key is on its way

    assert find_orphans(r, keyspace).processing == {"ghost-1": ["emails"]}
    assert recover_dead_workers(r, keyspace, sweep=False) == {}
    assert r.llen(keyspace.processing("emails", "ghost-1")) == 3

    assert recover_dead_workers(r, keyspace, actor="ops", events=EventEmitter(r, keyspace=keyspace)) == {
        "ghost-1": {"emails": 3}
    }

    assert sorted(lrange(r, keyspace.queue("emails"))) == sorted(lost)
    assert lrange(r, keyspace.processing("emails", "live-1")) == list(reversed(kept))
    assert lrange(r, keyspace.processing("emails", "recent-1")) == recent
    (event,) = [e for e in stream_events(r, keyspace) if e.type is EventType.RECOVERED]
    assert (event.worker_id, event.actor, event.count) == ("ghost-1", "ops", 3)
    assert find_orphans(r, keyspace).processing == {}


def test_a_registered_worker_whose_queue_list_is_gone_is_recovered_by_the_sweep(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    raws = node_raws("e", 2)
    dead_worker(r, keyspace, "dead-1", {"emails": raws}, age_ms=60_000)
    r.hdel(keyspace.worker_queues(), "dead-1")  # the index cannot tell where its jobs are

    assert recover_dead_workers(r, keyspace) == {"dead-1": {"emails": 2}}
    assert sorted(lrange(r, keyspace.queue("emails"))) == sorted(raws)
    assert r.zscore(keyspace.worker_index(), "dead-1") is None


def test_a_running_worker_sweeps_for_lists_of_workers_that_never_registered(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    record = Recorder()
    _orphan(r, keyspace, "ghost-1", "q", node_raws("orphan", 3))

    worker = start_worker(
        App({"step": record}), queues=("q",), heartbeat_interval_s=0.05, heartbeat_ttl_s=2, recovery_interval_s=1
    )

    wait_for(lambda: len(record) == 3 and idle(r, keyspace, worker, "q"), what="the orphans")
    assert sorted(record.ids()) == ["orphan-0", "orphan-1", "orphan-2"]


def test_one_worker_of_the_fleet_sweeps_per_interval(r: redis.Redis, keyspace: KeySpace) -> None:
    _orphan(r, keyspace, "ghost-1", "q", node_raws("orphan", 2))
    options = WorkerOptions(queues=("q",), worker_id="w-1", recovery_interval_s=30)

    def heartbeat() -> HeartbeatLoop:
        return HeartbeatLoop(r, keyspace, options, lambda: BusyState(WorkerStatus.IDLE), None)

    r.set(keyspace.sweep_lock(), "w-other", ex=30)  # another worker swept this interval
    heartbeat().tick()
    assert r.llen(keyspace.processing("q", "ghost-1")) == 2

    r.delete(keyspace.sweep_lock())
    heartbeat().tick()
    assert r.llen(keyspace.processing("q", "ghost-1")) == 0 and r.llen(keyspace.queue("q")) == 2
    assert r.get(keyspace.sweep_lock()) == b"w-1"
    assert 0 < int(r.ttl(keyspace.sweep_lock())) <= 30


def test_a_worker_that_cannot_put_its_jobs_back_keeps_its_registration(
    r: redis.Redis,
    keyspace: KeySpace,
    start_worker: StartWorker,
    gate: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def blocked(job: JobContext) -> None:
        gate.wait(5)

    def unreachable(*args: object, **kwargs: object) -> int:
        raise redis.ConnectionError("Redis went away during the shutdown")

    r.lpush(keyspace.queue("q"), *node_raws("held", 3))
    worker = start_worker(App({"step": blocked}), queues=("q",), concurrency=1, shutdown_timeout_s=0)
    wait_for(lambda: r.llen(keyspace.processing("q", worker.id)) == 3, what="the fetch")
    monkeypatch.setattr(_runtime, "requeue_processing", unreachable)

    worker.request_stop(force=True)
    worker.stop(timeout_s=HANG_S)
    gate.set()

    assert r.llen(keyspace.processing("q", worker.id)) == 3
    assert r.exists(keyspace.worker(worker.id)) == 0
    assert r.zscore(keyspace.worker_index(), worker.id) is not None
    assert json.loads(r.hget(keyspace.worker_queues(), worker.id) or "[]") == ["q"]
    later = server_ms(r) + 60_000
    assert recover_dead_workers(r, keyspace, now_ms=later, sweep=False) == {worker.id: {"q": 3}}
    assert sorted(lrange(r, keyspace.queue("q"))) == sorted(node_raws("held", 3))


@pytest.mark.parametrize("queues", [b"[" * 100_000, b"\xff[]", b'{"q":1}'])
def test_a_dead_worker_with_an_unreadable_queue_list_is_skipped_not_fatal(
    r: redis.Redis, keyspace: KeySpace, queues: bytes
) -> None:
    dead_worker(r, keyspace, "broken-1", {"q": node_raws("b", 1)}, age_ms=60_000)
    r.hset(keyspace.worker_queues(), "broken-1", queues)
    dead_worker(r, keyspace, "dead-2", {"q": node_raws("d", 2)}, age_ms=60_000)

    result = recover_dead_workers(r, keyspace=keyspace, sweep=False)

    assert result["dead-2"] == {"q": 2}
    assert result["broken-1"] == {}
