"""An idle worker starts new jobs at once: its wait on the base lists and the producers' wake channels.

Every worker here polls once an hour, longer than any test waits (``HANG_S``): a job it runs
was found by a wake-up, never by the poll.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import redis
from patience import HANG_S
from wire_data import node_job
from worker_helpers import Recorder, idle, server_ms, wait_for

from zenith_protocol import KeySpace
from zenith_sdk.producer import Producer
from zenith_sdk.worker import App, JobContext, Worker

StartWorker = Callable[..., Worker]

AN_HOUR_S = 3600.0


def _waiting(r: redis.Redis, worker_id: str, count: int = 1) -> bool:
    """Whether ``count`` connections of this worker are blocked in their wait on a base list."""
    clients = r.client_list()
    name = f"zenith-worker:{worker_id}"
    return sum(c["name"] == name and c["cmd"] == "blmove" and "b" in c["flags"] for c in clients) >= count


def _listening(r: redis.Redis, worker: Worker, queues: tuple[str, ...]) -> bool:
    """Whether the worker has subscribed to the wake channel of each of ``queues``."""
    channels = [worker.keyspace.wake_channel(queue) for queue in queues]
    return all(int(count) >= 1 for _, count in r.pubsub_numsub(*channels))


def _waiting_worker(r: redis.Redis, start_worker: StartWorker, app: App, *queues: str) -> Worker:
    """A worker that polls once an hour, once it waits on the base list of each of ``queues`` and listens
    on their wake channels (its listener subscribes in a thread of its own, maybe after the first wait)."""
    worker = start_worker(app, queues=queues, poll_interval_s=AN_HOUR_S)
    wait_for(lambda: _waiting(r, worker.id, len(queues)), what=f"the worker to wait on {', '.join(queues)}")
    wait_for(lambda: _listening(r, worker, queues), what="the worker to listen on the wake channels")
    return worker


def _blmove_calls(r: redis.Redis) -> int:
    stats = r.info("commandstats").get("cmdstat_blmove")
    return int(stats["calls"]) if stats else 0


def test_an_idle_worker_starts_a_job_the_node_producer_pushed_without_waiting_for_its_poll(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    record = Recorder()
    worker = _waiting_worker(r, start_worker, App({"send": record}), "first", "second")

    for n, queue in enumerate(["second", "first", "second"]):
        r.lpush(keyspace.queue(queue), node_job(f"node-{n}", "send", {"n": n}, created_at=server_ms(r)))
        wait_for(lambda: len(record) == n + 1, what=f"job {n} on queue {queue}")
        # The wait took nothing: every job was fetched into this worker's processing list.
        wait_for(lambda: idle(r, keyspace, worker, "first", "second"), what="the job to be acknowledged")

    assert [(job.id, job.queue) for job in record.runs] == [
        ("node-0", "second"),
        ("node-1", "first"),
        ("node-2", "second"),
    ]


def test_jobs_our_producer_puts_elsewhere_are_announced_and_start_at_once(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    started: dict[str, int] = {}

    def note(job: JobContext) -> None:
        started[job.id] = server_ms(r)

    _waiting_worker(r, start_worker, App({"note": note}), "q")

    urgent = producer.push("note", queue="q", priority="critical")
    wait_for(lambda: urgent in started, what="the critical job")
    pushed = server_ms(r)
    later = producer.push("note", queue="q", delay_s=0.3, priority="low")
    wait_for(lambda: later in started, what="the delayed job")
    assert started[later] >= pushed + 300  # not before it was due


def test_the_wait_keeps_lane_order_for_jobs_pushed_without_a_signal(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    record = Recorder()
    _waiting_worker(r, start_worker, App({"send": record}), "q")

    # A Node producer's critical job sends no signal; the base job after it ends the wait, and the
    # fetch that follows takes the critical one first.
    pipe = r.pipeline(transaction=True)
    pipe.lpush(keyspace.lane("q", "critical"), node_job("urgent", "send", {}, created_at=server_ms(r)))
    pipe.lpush(keyspace.queue("q"), node_job("plain", "send", {}, created_at=server_ms(r)))
    pipe.execute()

    wait_for(lambda: len(record) == 2, what="both jobs")
    assert [job.id for job in record.runs] == ["urgent", "plain"]


def test_a_paused_queue_with_jobs_is_not_waited_on_in_a_loop(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    record = Recorder()
    worker = _waiting_worker(r, start_worker, App({"send": record}), "q")
    r.set(keyspace.paused("q"), "1")
    r.lpush(keyspace.queue("q"), *(node_job(f"held-{n}", "send", {}, created_at=server_ms(r)) for n in range(3)))

    # The push ends the wait once; the fetch finds the queue paused with jobs, so the worker stops
    # waiting on that list (a wait would return at once, for ever) and polls it instead.
    wait_for(lambda: not _waiting(r, worker.id), what="the worker to stop waiting")
    before = _blmove_calls(r)
    time.sleep(0.5)
    assert _blmove_calls(r) - before <= 1
    assert record.runs == [] and r.llen(keyspace.queue("q")) == 3


def test_a_worker_killed_while_waiting_leaves_every_job_where_it_was(
    redis_url: str, r: redis.Redis, keyspace: KeySpace
) -> None:
    script = textwrap.dedent(
        f"""
        from zenith_protocol import KeySpace
        from zenith_sdk.worker import App, Worker

        space = KeySpace.model_validate_json({keyspace.model_dump_json()!r})
        Worker(App({{"send": print}}), {redis_url!r}, keyspace=space, queues=("q",), poll_interval_s={AN_HOUR_S},
               worker_id="doomed").run()
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(lambda: _waiting(r, "doomed") or process.poll() is not None, what="the worker to wait")
        assert process.poll() is None
        os.kill(process.pid, signal.SIGKILL)
        process.wait(HANG_S)
    finally:
        if process.poll() is None:
            process.kill()
    raw = node_job("kept", "send", {}, created_at=server_ms(r))
    r.lpush(keyspace.queue("q"), raw)
    wait_for(lambda: not _waiting(r, "doomed"), what="Redis to drop the dead connection")
    assert r.lrange(keyspace.queue("q"), 0, -1) == [raw.encode()]
    assert r.llen(keyspace.processing("q", "doomed")) == 0


def test_without_wake_the_worker_polls_and_opens_no_waiting_connection(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    record = Recorder()
    worker = start_worker(App({"send": record}), queues=("q",), wake=False)
    r.lpush(keyspace.queue("q"), node_job("polled", "send", {}, created_at=server_ms(r)))
    wait_for(lambda: len(record) == 1, what="the polled job")
    names = [c["name"] for c in r.client_list()]
    assert names.count(f"zenith-worker:{worker.id}") >= 1
    assert not _waiting(r, worker.id)
