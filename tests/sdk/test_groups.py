"""FIFO groups shared by Node and Python producers and workers, against a real Redis.

A group is admitted at push (the Node producer's script): exactly one job of a group is
fetchable or running at a time, in push order, the next released when one completes or is
dead-lettered; retries, recovery, operator actions and purges keep that, and a group left stuck
by an older version is found by ``doctor`` and let go by ``repair_groups``.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis
from node_consumer import NodeConsumer, NodeJob, NodeProducer
from wire_data import node_job
from worker_fixtures import StartWorker
from worker_helpers import Recorder, idle, lrange, make_due, retry_attempts, wait_for

from zenith_protocol import KeySpace, decode_job
from zenith_sdk.control import (
    BulkAction,
    JobState,
    bulk,
    delete_job,
    get_job,
    group_survey,
    list_jobs,
    purge,
    queue_snapshots,
    repair_groups,
    retry_job,
    search,
    stuck_groups,
)
from zenith_sdk.doctor import run_doctor
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.schedules import Scheduler
from zenith_sdk.worker import App, JobContext


def _ids(r: redis.Redis, key: str) -> list[str]:
    """The job ids of a list, oldest (right end) first."""
    return [decode_job(raw).id for raw in reversed(lrange(r, key))]


def _pending(r: redis.Redis, space: KeySpace, group: str) -> list[str]:
    """A group's pending jobs, next first (it is appended to)."""
    return [decode_job(raw).id for raw in lrange(r, space.group_pending("q", group))]


# -- Node and Python side by side ------------------------------------------------------------------


def test_two_grouped_jobs_pushed_by_the_node_producer_both_run_in_order(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    node = NodeProducer(r, keyspace)
    node.push("q", "1700000000000-aaaaaaa", "step", {"n": 1}, group="tenant-7")
    node.push("q", "1700000000001-bbbbbbb", "step", {"n": 2}, group="tenant-7")
    # The Node producer admitted the first at push: the group is held, the second waits.
    assert r.smembers(keyspace.group_active("q")) == {b"tenant-7"}
    assert _ids(r, keyspace.queue("q")) == ["1700000000000-aaaaaaa"]
    assert _pending(r, keyspace, "tenant-7") == ["1700000000001-bbbbbbb"]
    record = Recorder()

    worker = start_worker(App({"step": record}), queues=("q",), concurrency=2)

    wait_for(lambda: len(record) == 2 and idle(r, keyspace, worker, "q"), what="both jobs")
    assert [job.properties["n"] for job in record.runs] == [1, 2]
    wait_for(lambda: r.scard(keyspace.group_active("q")) == 0, what="the group to be freed")
    assert r.exists(keyspace.group_pending("q", "tenant-7")) == 0


def test_python_pushes_queue_up_behind_a_group_node_admitted(r: redis.Redis, keyspace: KeySpace) -> None:
    NodeProducer(r, keyspace).push("q", "node-1", "step", group="g")
    Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="step", queue="q", group_id="g", job_id=f"py-{n}", priority="high") for n in range(2)]
    )

    assert _ids(r, keyspace.queue("q")) == ["node-1"]
    assert r.llen(keyspace.lane("q", "high")) == 0
    assert _pending(r, keyspace, "g") == ["py-0", "py-1"]


def test_the_node_consumer_runs_a_python_group_in_order(r: redis.Redis, keyspace: KeySpace) -> None:
    Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="step", queue="q", group_id="g", job_id=f"py-{n}") for n in range(3)]
    )
    seen: list[NodeJob] = []

    done = NodeConsumer(r, keyspace, ["q"], {"step": seen.append}).drain()

    assert [job.id for job in seen] == ["py-0", "py-1", "py-2"]
    assert [p.outcome for p in done] == ["completed"] * 3
    assert r.scard(keyspace.group_active("q")) == 0


def test_mixed_producers_and_workers_run_one_job_of_a_group_at_a_time_in_push_order(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    node, python = NodeProducer(r, keyspace), Producer(r, keyspace=keyspace)
    for seq in range(8):
        if seq % 2:
            python.push("step", {"seq": seq}, queue="q", group_id="g", job_id=f"j-{seq}")
        else:
            node.push("q", f"j-{seq}", "step", {"seq": seq}, group="g")
    lock = threading.Lock()
    running, most, order = [0], [0], []

    def step(seq: int, who: str) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            order.append((seq, who))
        time.sleep(0.005)  # widens the window in which a second job of the group could overlap
        with lock:
            running[0] -= 1

    worker = start_worker(
        App({"step": lambda job: step(job.properties["seq"], "python")}), queues=("q",), concurrency=4
    )
    node_consumer = NodeConsumer(r, keyspace, ["q"], {"step": lambda job: step(job.properties["seq"], "node")})
    while len(order) < 8:  # the Node consumer polls here while our worker runs in its threads
        if node_consumer.poll_once() is None:
            time.sleep(0.002)

    wait_for(lambda: len(order) == 8 and idle(r, keyspace, worker, "q"), what="every job")
    assert [seq for seq, _ in order] == list(range(8))
    assert most == [1]
    wait_for(lambda: r.scard(keyspace.group_active("q")) == 0, what="the group to be freed")


def test_jobs_of_a_group_run_one_at_a_time_in_order_while_groups_run_in_parallel(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    lock = threading.Lock()
    running: dict[str, int] = {"g1": 0, "g2": 0, "-": 0}
    most: dict[str, int] = dict(running)
    order: dict[str, list[int]] = {"g1": [], "g2": [], "-": []}
    g2_started = threading.Event()
    overlapped: list[bool] = []

    def step(job: JobContext) -> None:
        group = job.payload.group_id or "-"
        with lock:
            running[group] += 1
            most[group] = max(most[group], running[group])
            order[group].append(job.properties["seq"])
        if group == "g2":
            g2_started.set()
        if group == "g1" and job.properties["seq"] == 0:
            overlapped.append(g2_started.wait(3))  # only true if a g2 job starts while this one runs
        time.sleep(0.02)
        with lock:
            running[group] -= 1

    specs = []
    for seq in range(5):
        specs.append(JobSpec(name="step", properties={"seq": seq}, queue="q", group_id="g1"))
        specs.append(JobSpec(name="step", properties={"seq": seq}, queue="q", group_id="g2"))
        if seq < 2:
            specs.append(JobSpec(name="step", properties={"seq": seq}, queue="q"))
    producer.push_many(specs)
    worker = start_worker(App({"step": step}), queues=("q",), concurrency=4)

    wait_for(lambda: sum(len(v) for v in order.values()) == 12 and idle(r, keyspace, worker, "q"), what="12 jobs")
    assert order["g1"] == [0, 1, 2, 3, 4] and order["g2"] == [0, 1, 2, 3, 4]
    assert sorted(order["-"]) == [0, 1]  # jobs without a group run side by side, in no promised order
    assert most["g1"] == 1 and most["g2"] == 1
    assert overlapped == [True]
    wait_for(lambda: r.scard(keyspace.group_active("q")) == 0, what="the groups to be released")
    assert r.exists(keyspace.group_pending("q", "g1"), keyspace.group_pending("q", "g2")) == 0


# -- failures --------------------------------------------------------------------------------------


def test_a_retried_job_keeps_its_group_and_a_dead_letter_releases_it(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    ran: list[tuple[str, int]] = []

    def step(job: JobContext) -> None:
        ran.append((job.id, job.attempt))
        if job.id == "first":
            raise RuntimeError("boom")

    producer.push_many(
        [JobSpec(name="step", queue="q", group_id="g", job_id=i, max_attempts=2) for i in ("first", "second")]
    )
    worker = start_worker(App({"step": step}), queues=("q",))

    wait_for(
        lambda: retry_attempts(r, keyspace.delayed("q")) == [1] and idle(r, keyspace, worker, "q"), what="the retry"
    )
    assert ran == [("first", 1)]
    assert _pending(r, keyspace, "g") == ["second"]  # the retry still holds the group
    make_due(r, keyspace.delayed("q"))

    wait_for(lambda: len(ran) == 3 and idle(r, keyspace, worker, "q"), what="the dead letter, then the next job")
    assert ran == [("first", 1), ("first", 2), ("second", 1)]
    assert _ids(r, keyspace.failed("q")) == ["first"]
    wait_for(lambda: r.scard(keyspace.group_active("q")) == 0, what="the group to be freed")


# -- operators -------------------------------------------------------------------------------------


def _held_group(r: redis.Redis, space: KeySpace) -> None:
    """Group g held by w-0 (waiting), with w-1 and w-2 behind it; a dead letter d-0 of the same group."""
    Producer(r, keyspace=space).push_many(
        [JobSpec(name="step", queue="q", group_id="g", job_id=f"w-{n}") for n in range(3)]
    )
    r.lpush(space.failed("q"), node_job("d-0", "step", {}, created_at=1, groupId="g", attempts=3, error="x"))


def test_grouped_jobs_are_listed_counted_found_and_searched(r: redis.Redis, keyspace: KeySpace) -> None:
    _held_group(r, keyspace)

    (snapshot,) = queue_snapshots(r, keyspace)
    assert (snapshot.waiting, snapshot.grouped, snapshot.failed) == (1, 2, 1)
    grouped = list_jobs(r, "q", JobState.GROUPED, keyspace=keyspace, oldest_first=True)
    assert [e.job.id for e in grouped if e.job] == ["w-1", "w-2"]
    newest = list_jobs(r, "q", JobState.GROUPED, keyspace=keyspace, limit=1)
    assert [e.job.id for e in newest if e.job] == ["w-2"]
    assert get_job(r, "q", "w-2", keyspace=keyspace).state is JobState.GROUPED
    assert [(e.state, e.job.id if e.job else None) for e in search(r, "w-2", keyspace=keyspace)] == [
        (JobState.GROUPED, "w-2")
    ]


def test_deleting_a_groups_fetchable_job_lets_the_next_go(r: redis.Redis, keyspace: KeySpace) -> None:
    _held_group(r, keyspace)

    assert delete_job(r, "q", "w-0", keyspace=keyspace, actor="t") is JobState.WAITING

    assert _ids(r, keyspace.queue("q")) == ["w-1"]
    assert _pending(r, keyspace, "g") == ["w-2"]
    assert delete_job(r, "q", "w-2", keyspace=keyspace, actor="t") is JobState.GROUPED
    assert r.exists(keyspace.group_pending("q", "g")) == 0
    assert r.smembers(keyspace.group_active("q")) == {b"g"}  # w-1 still holds it


def test_a_retried_dead_letter_waits_behind_its_held_group_or_runs_when_it_is_free(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    _held_group(r, keyspace)

    assert retry_job(r, "q", "d-0", keyspace=keyspace, actor="t") is JobState.FAILED
    assert _pending(r, keyspace, "g") == ["w-1", "w-2", "d-0"]

    r.lpush(keyspace.failed("q"), node_job("e-0", "step", {}, created_at=1, groupId="free", attempts=3, error="x"))
    result = bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, actor="t")  # the filter walk
    assert result.moved == 1
    assert _ids(r, keyspace.queue("q")) == ["w-0", "e-0"]
    assert r.smembers(keyspace.group_active("q")) == {b"g", b"free"}


def test_bulk_deletes_of_waiting_grouped_jobs_release_each_group_once(r: redis.Redis, keyspace: KeySpace) -> None:
    producer = Producer(r, keyspace=keyspace)
    for group in ("a", "b"):
        producer.push_many([JobSpec(name="step", queue="q", group_id=group, job_id=f"{group}-{n}") for n in range(3)])
    producer.push("other", queue="q", job_id="plain")

    result = bulk(r, "q", JobState.WAITING, BulkAction.DELETE, keyspace=keyspace, actor="t")

    assert result.moved == 3  # a-0, b-0 and plain; a-1 and b-1 were released meanwhile and are left
    assert sorted(_ids(r, keyspace.queue("q"))) == ["a-1", "b-1"]
    assert _pending(r, keyspace, "a") == ["a-2"] and _pending(r, keyspace, "b") == ["b-2"]


def test_purge_frees_the_groups_of_the_queue_and_deletes_the_jobs_behind_them(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    _held_group(r, keyspace)
    Producer(r, keyspace=keyspace).push("step", queue="other", group_id="elsewhere")

    purge(r, "q", confirm="q", keyspace=keyspace, actor="t")

    assert r.smembers(keyspace.group_active("q")) == {b"elsewhere"}
    assert r.exists(keyspace.group_pending("q", "g")) == 0
    Producer(r, keyspace=keyspace).push("step", queue="q", group_id="g", job_id="fresh")
    assert _ids(r, keyspace.queue("q")) == ["fresh"]  # the group is free again: fetchable at once


# -- schedules, producers ---------------------------------------------------------------------------


def test_a_fired_schedule_of_a_grouped_job_queues_up_behind_its_group(r: redis.Redis, keyspace: KeySpace) -> None:
    NodeProducer(r, keyspace).push("q", "running", "step", group="g")
    job = node_job("sched-1", "step", {}, created_at=1, groupId="g")
    r.hset(keyspace.schedule("s1"), mapping={"id": "s1", "cron": "* * * * *", "queue": "q", "job": job, "nextRun": "1"})
    r.zadd(keyspace.schedules(), {"s1": 1})

    with Scheduler(r, keyspace=keyspace, events=False) as scheduler:
        assert scheduler.tick() == ["s1"]
        scheduler.run_now("s1", actor="t")

    assert _ids(r, keyspace.queue("q")) == ["running"]
    assert [decode_job(raw).name for raw in lrange(r, keyspace.group_pending("q", "g"))] == ["step", "step"]


def test_a_grouped_job_cannot_also_be_delayed(producer: Producer) -> None:
    with pytest.raises(ValueError, match="cannot also be delayed"):
        producer.push("step", queue="q", group_id="g", delay_s=5)
    with pytest.raises(ValueError, match="group_id must not be empty"):
        producer.push("step", queue="q", group_id="")


# -- stuck groups ----------------------------------------------------------------------------------


def _left_by_an_older_version(r: redis.Redis, space: KeySpace) -> None:
    """What an older worker left: it fetched a job Node had admitted, took the held group for a running
    job and parked the job in the pending list, where nothing will ever release it."""
    node = NodeProducer(r, space)
    parked = node.push("q", "parked", "step", group="g")
    node.push("q", "behind", "step", group="g")
    r.lrem(space.queue("q"), 1, parked.decode())
    r.lpush(space.group_pending("q", "g"), parked)
    r.lpush(space.failed("q"), node_job("old", "step", {}, created_at=1, groupId="g", attempts=3, error="x"))
    r.sadd(space.group_active("q"), "empty")  # held, with nothing pending and nothing running


def test_a_stuck_group_is_found_by_doctor_and_let_go_by_a_repair(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    _left_by_an_older_version(r, keyspace)
    Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="step", queue="q", group_id="fine", job_id=f"f-{n}") for n in range(2)]
    )

    report = run_doctor(r, keyspace=keyspace)
    assert not report.ok
    assert sorted((g.id, g.held, g.pending, g.queue) for g in report.stuck_groups) == [
        ("empty", True, 0, None),
        ("g", True, 2, "q"),  # its dead letter tells the queue
    ]
    assert {g.id: g.stuck for g in group_survey(r, keyspace)} == {"empty": True, "fine": False, "g": True}

    repairs = repair_groups(r, keyspace, actor="ops")

    assert sorted((repair.group.id, repair.outcome, repair.queue, repair.job_id) for repair in repairs) == [
        ("empty", "freed", None, None),
        ("g", "released", "q", "parked"),
    ]
    assert stuck_groups(r, keyspace) == [] and run_doctor(r, keyspace=keyspace).ok
    record = Recorder()
    worker = start_worker(App({"step": record}), queues=("q",))
    wait_for(lambda: len(record) == 4 and idle(r, keyspace, worker, "q"), what="the jobs of both groups")
    assert [job.id for job in record.runs if job.payload.group_id == "g"] == ["parked", "behind"]


def test_a_repair_needs_the_queue_when_nothing_tells_it(r: redis.Redis, keyspace: KeySpace) -> None:
    _left_by_an_older_version(r, keyspace)
    r.delete(keyspace.failed("q"))  # no dead letter of the group tells its queue

    (unknown,) = [repair for repair in repair_groups(r, keyspace, actor="ops") if repair.group.id == "g"]
    assert unknown.outcome == "no-queue" and r.llen(keyspace.group_pending("q", "g")) == 2

    (done,) = [
        repair for repair in repair_groups(r, keyspace, queues={"g": "q"}, actor="ops") if repair.group.id == "g"
    ]
    assert (done.outcome, done.queue) == ("released", "q")
    assert _ids(r, keyspace.queue("q")) == ["parked"]
