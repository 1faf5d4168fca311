"""The worker's Redis connections killed while it is busy: it reconnects, reconciles, loses and repeats nothing."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest
import redis
from event_stream import completions, stream_events
from patience import HANG_S
from reply_dropper import reply_dropper
from worker_helpers import wait_for

from zenith_protocol import EventType, KeySpace
from zenith_protocol.events import implied_start
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.scripts import FETCH, SETTLE
from zenith_sdk.worker import App, JobContext, Worker

JOBS = 800


def _kill_named(killer: redis.Redis, name: str) -> int:
    """CLIENT KILL every connection called ``name`` (only this test's worker: other clients live on)."""
    killed = 0
    for client in killer.client_list():
        if client.get("name") == name:
            try:
                killed += int(killer.client_kill_filter(_id=client["id"]))
            except redis.ResponseError:
                pass  # it closed between CLIENT LIST and CLIENT KILL
    return killed


def test_client_kill_while_busy_loses_and_repeats_nothing(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zenith_sdk")
    ran = Counter[str]()
    lock = threading.Lock()

    def tick(job: JobContext) -> None:
        with lock:
            ran[job.id] += 1

    producer = Producer(r, keyspace=keyspace)
    ids = producer.push_many([JobSpec(name="tick", queue="outage") for _ in range(JOBS)])
    worker = Worker(App({"tick": tick}), r, keyspace=keyspace, queues=["outage"], concurrency=2, poll_interval_s=0.05)
    killer = redis.Redis(connection_pool=redis.ConnectionPool(**r.connection_pool.connection_kwargs))
    kills = 0

    def mid_round_trip() -> bool:
        return any("lost Redis" in record.message for record in caplog.records)

    worker.start()
    try:
        wait_for(lambda: worker.processed > 0, what="the worker busy")
        # Kill the worker's connections over and over while it works. A kill between two requests
        # is healed without an error; only one that lands in the middle of a round trip tests the
        # reconciliation, so while none has, more jobs keep the worker busy.
        deadline = time.monotonic() + HANG_S
        while len(completions(r, keyspace)) < len(ids) or not mid_round_trip():
            if time.monotonic() > deadline:
                pytest.fail(f"{len(completions(r, keyspace))} of {len(ids)} jobs done after {HANG_S:g} s of kills")
            if len(completions(r, keyspace)) >= len(ids):
                ids += producer.push_many([JobSpec(name="tick", queue="outage") for _ in range(JOBS // 4)])
            kills += _kill_named(killer, f"zenith-worker:{worker.id}")
            time.sleep(0.002)
    finally:
        worker.stop(timeout_s=HANG_S)
        killer.connection_pool.disconnect()
    completed = completions(r, keyspace)
    assert kills > 0
    assert set(completed) == set(ids)
    assert max(completed.values()) == 1
    assert set(ran) == set(ids)
    assert max(ran.values()) == 1
    assert r.llen(keyspace.queue("outage")) == 0
    assert r.llen(keyspace.processing("outage", worker.id)) == 0


def test_a_connection_dropped_while_the_worker_starts_is_tried_again(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zenith_sdk")
    ids = Producer(r, keyspace=keyspace).push_many([JobSpec(name="tick", queue="start") for _ in range(3)])
    kwargs = r.connection_pool.connection_kwargs
    with reply_dropper(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)) as proxy:
        cut = proxy.arm(b"$6\r\nSCRIPT\r\n", deliver=False)  # its first step: loading the scripts
        through = redis.Redis(host="127.0.0.1", port=proxy.port, db=kwargs.get("db", 0))
        worker = Worker(App({"tick": lambda job: None}), through, keyspace=keyspace, queues=["start"])
        worker.start()
        try:
            wait_for(lambda: set(completions(r, keyspace)) == set(ids), what="every job done")
        finally:
            worker.stop(timeout_s=HANG_S)
            through.close()
    assert cut.is_set()
    assert any("could not start" in record.message for record in caplog.records)


# -- a reply lost for certain: the reconciliation after it ------------------------------------------


def _run_through_a_cut(
    r: redis.Redis,
    keyspace: KeySpace,
    caplog: pytest.LogCaptureFixture,
    marker: bytes,
    *,
    deliver: bool,
    fail_first: bool = False,
    outage: bool = False,
) -> tuple[list[str], Counter[tuple[str, int]]]:
    """Run 30 jobs on a worker whose connection is cut once, at the first round trip holding ``marker``.

    Returns the job ids and how often each ran, by attempt. With ``fail_first``, each job's first
    attempt fails (and is retried at once), so that settle scripts run. With ``outage``, Redis
    stays out of reach after the cut until two more jobs have finished (jobs take a few ms).
    """
    caplog.set_level(logging.WARNING, logger="zenith_sdk")
    ran = Counter[tuple[str, int]]()
    lock = threading.Lock()

    def tick(job: JobContext) -> None:
        with lock:
            ran[(job.id, job.attempt)] += 1
        if outage:
            time.sleep(0.005)
        if fail_first and job.attempt == 1:
            raise RuntimeError("first attempt fails")

    ids = Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="tick", queue="cut", retry_after_s=0) for _ in range(30)]
    )
    kwargs = r.connection_pool.connection_kwargs
    with reply_dropper(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)) as proxy:
        back = threading.Event()
        cut = proxy.arm(marker, deliver=deliver, outage=back if outage else None)
        through = redis.Redis(host="127.0.0.1", port=proxy.port, db=kwargs.get("db", 0))
        worker = Worker(App({"tick": tick}), through, keyspace=keyspace, queues=["cut"], concurrency=2)
        worker.start()
        try:
            wait_for(cut.is_set, what="the cut")
            if outage:
                finished = worker.processed
                wait_for(lambda: worker.processed >= finished + 2, what="jobs finished while Redis is away")
                assert proxy.refused > 0  # the worker tried to reconnect, and could not
                back.set()
            wait_for(lambda: set(completions(r, keyspace)) == set(ids), what="every job done")
        finally:
            worker.stop(timeout_s=HANG_S)
            through.close()
    assert any("lost Redis" in record.message for record in caplog.records)
    completed = completions(r, keyspace)
    assert max(completed.values()) == 1
    events = stream_events(r, keyspace)
    starts = [start for event in events for start in (event, implied_start(event)) if start and start.type == "started"]
    assert Counter((start.job_id, start.attempt) for start in starts) == Counter(ran)
    assert r.llen(keyspace.processing("cut", worker.id)) == 0
    assert r.llen(keyspace.queue("cut")) == r.zcard(keyspace.delayed("cut")) == r.llen(keyspace.failed("cut")) == 0
    return ids, ran


def test_jobs_fetched_by_a_round_trip_whose_reply_was_lost_are_adopted_and_run_once(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    ids, ran = _run_through_a_cut(r, keyspace, caplog, FETCH.sha.encode(), deliver=True)

    assert ran == Counter({(job_id, 1): 1 for job_id in ids})
    assert any("adopts" in record.message for record in caplog.records)


@pytest.mark.parametrize("deliver", [True, False], ids=["reply-lost", "request-lost"])
def test_acknowledgements_whose_fate_was_unknown_land_once(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture, deliver: bool
) -> None:
    # The first round trip that sends an LREM acknowledges finished jobs (with their events and a fetch).
    ids, ran = _run_through_a_cut(r, keyspace, caplog, b"$4\r\nLREM\r\n", deliver=deliver)

    assert ran == Counter({(job_id, 1): 1 for job_id in ids})


@pytest.mark.parametrize("deliver", [True, False], ids=["reply-lost", "request-lost"])
def test_jobs_finished_while_redis_is_away_are_acknowledged_once(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture, deliver: bool
) -> None:
    # Redis stays away after the cut: jobs finish meanwhile, and reconciling fails until it is back.
    # What finished then is acknowledged after the cut round trip, whether that one ran or not.
    ids, ran = _run_through_a_cut(r, keyspace, caplog, b"$4\r\nLREM\r\n", deliver=deliver, outage=True)

    assert ran == Counter({(job_id, 1): 1 for job_id in ids})


@pytest.mark.parametrize("deliver", [True, False], ids=["reply-lost", "request-lost"])
def test_retries_whose_fate_was_unknown_are_scheduled_once(
    r: redis.Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture, deliver: bool
) -> None:
    ids, ran = _run_through_a_cut(r, keyspace, caplog, SETTLE.sha.encode(), deliver=deliver, fail_first=True)

    assert ran == Counter({(job_id, attempt): 1 for job_id in ids for attempt in (1, 2)})
    retried = Counter(event.job_id for event in stream_events(r, keyspace) if event.type == EventType.RETRIED)
    assert retried == Counter(ids)
