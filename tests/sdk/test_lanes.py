"""Priority lanes with their own delayed sets and paused flags, as the Node producer and consumer use them.

Each lane (critical, high, base, low) has a delayed set and a paused flag of its own
(``queue:<q>:<lane>:delayed``, ``queue:<q>:<lane>:paused``). They are counted, listed, searched,
promoted into their own lane, honoured when paused, recognised by ``doctor``, and moved by
retry, delete, promote and purge; a retried or promoted job goes to the lane its ``priority``
names when that lane is polled, else to the base list.
"""

from __future__ import annotations

from typing import cast

import pytest
import redis
from node_consumer import NodeConsumer, NodeJob, NodeProducer
from wire_data import node_job
from worker_fixtures import StartWorker
from worker_helpers import Recorder, idle, lrange, make_due, wait_for

from zenith_protocol import KeySpace, decode_job
from zenith_sdk.control import (
    BulkAction,
    JobState,
    bulk,
    delete_job,
    get_job,
    list_jobs,
    pause,
    promote_job,
    purge,
    queue_snapshots,
    resume,
    retry_job,
    search,
)
from zenith_sdk.doctor import run_doctor
from zenith_sdk.producer import Producer
from zenith_sdk.worker import App

NOW = 1_767_225_600_000


def _ids(r: redis.Redis, key: str) -> list[str]:
    """The job ids of a list, oldest (right end) first."""
    return [decode_job(raw).id for raw in reversed(lrange(r, key))]


def _seed(r: redis.Redis, space: KeySpace) -> None:
    """Waiting jobs in every lane and delayed jobs in three lanes' delayed sets, as Node writes them."""
    node = NodeProducer(r, space, clock_ms=lambda: NOW)
    for lane in ("critical", "high", None, "low"):
        for n in range(2):
            node.push("q", f"{lane or 'base'}-{n}", "step", priority=lane)
    node.push("q", "later-high", "step", priority="high", delay_s=60)
    node.push("q", "later-low", "step", priority="low", delay_s=30)
    node.push("q", "later-base", "step", delay_s=90)


def test_every_lane_and_its_delayed_set_is_counted_and_listed(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)
    r.set(keyspace.paused("q", "low"), "1")  # a lane paused on its own, as the Node console may leave it

    (snapshot,) = queue_snapshots(r, keyspace)
    assert (snapshot.waiting, snapshot.delayed, snapshot.paused) == (8, 3, False)
    assert snapshot.lanes == {"critical": 2, "high": 2, "low": 2}
    assert snapshot.paused_lanes == ["low"]

    waiting = list_jobs(r, "q", JobState.WAITING, keyspace=keyspace, oldest_first=True)
    assert [(e.job.id if e.job else None, e.lane) for e in waiting] == [
        ("critical-0", "critical"),
        ("critical-1", "critical"),
        ("high-0", "high"),
        ("high-1", "high"),
        ("base-0", None),
        ("base-1", None),
        ("low-0", "low"),
        ("low-1", "low"),
    ]
    newest = list_jobs(r, "q", JobState.WAITING, keyspace=keyspace, offset=1, limit=3)
    assert [e.job.id for e in newest if e.job] == ["low-0", "base-1", "base-0"]
    delayed = list_jobs(r, "q", JobState.DELAYED, keyspace=keyspace, oldest_first=True)
    assert [(e.job.id if e.job else None, e.lane, e.due_ms) for e in delayed] == [
        ("later-low", "low", NOW + 30_000),
        ("later-high", "high", NOW + 60_000),
        ("later-base", None, NOW + 90_000),
    ]
    found = get_job(r, "q", "later-high", keyspace=keyspace)
    assert (found.state, found.lane, found.due_ms) == (JobState.DELAYED, "high", NOW + 60_000)
    assert [(e.state, e.lane) for e in search(r, "later-low", keyspace=keyspace)] == [(JobState.DELAYED, "low")]


def test_the_worker_promotes_each_lanes_due_jobs_into_that_lane(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    node = NodeProducer(r, keyspace)
    node.push("q", "base-now", "step")
    node.push("q", "low-later", "step", priority="low", delay_s=60)
    node.push("q", "critical-later", "step", priority="critical", delay_s=60)
    for lane in ("low", "critical"):
        make_due(r, keyspace.delayed("q", lane))
    record = Recorder()

    worker = start_worker(App({"step": record}), queues=("q",), concurrency=1, prefetch=0)

    wait_for(lambda: len(record) == 3 and idle(r, keyspace, worker, "q"), what="the three jobs")
    assert record.ids() == ["critical-later", "base-now", "low-later"]


def test_a_lane_paused_on_its_own_is_skipped_with_its_delayed_set(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    node = NodeProducer(r, keyspace)
    node.push("q", "high-now", "step", priority="high")
    node.push("q", "high-later", "step", priority="high", delay_s=60)
    node.push("q", "base-now", "step")
    make_due(r, keyspace.delayed("q", "high"))
    r.set(keyspace.paused("q", "high"), "1")
    record = Recorder()

    worker = start_worker(App({"step": record}), queues=("q",))

    wait_for(lambda: len(record) == 1 and idle(r, keyspace, worker, "q"), what="the base job")
    assert record.ids() == ["base-now"]
    assert _ids(r, keyspace.lane("q", "high")) == ["high-now"] and r.zcard(keyspace.delayed("q", "high")) == 1
    resume(r, "q", keyspace=keyspace, actor="t")
    wait_for(lambda: len(record) == 3, what="the high lane")
    assert sorted(record.ids()[1:]) == ["high-later", "high-now"]


def test_pausing_a_queue_sets_every_lanes_flag_so_node_consumers_stop_too(r: redis.Redis, keyspace: KeySpace) -> None:
    node = NodeProducer(r, keyspace)
    for lane in ("critical", "high", None, "low"):
        node.push("q", f"{lane or 'base'}-0", "step", priority=lane)
    ran: list[NodeJob] = []
    consumer = NodeConsumer(r, keyspace, ["q"], {"step": ran.append})

    pause(r, "q", keyspace=keyspace, actor="t")

    assert all(r.get(flag) == b"1" for flag in keyspace.paused_in_poll_order("q"))
    assert consumer.drain() == [] and ran == []
    (snapshot,) = queue_snapshots(r, keyspace)
    assert snapshot.paused and snapshot.paused_lanes == ["critical", "high", "low"]

    resume(r, "q", keyspace=keyspace, actor="t")

    assert r.exists(*keyspace.paused_in_poll_order("q")) == 0
    consumer.drain()
    assert [job.id for job in ran] == [
        "critical-0",
        "high-0",
        "base-0",
        "low-0",
    ]


@pytest.mark.parametrize(
    ("priority", "lane"),
    [("critical", "critical"), ("high", "high"), ("low", "low"), ("urgent", None), (None, None), (7, None)],
)
def test_a_retried_dead_letter_goes_to_the_lane_its_priority_names(
    r: redis.Redis, keyspace: KeySpace, priority: object, lane: str | None
) -> None:
    extra = {} if priority is None else {"priority": priority}
    r.lpush(keyspace.failed("q"), node_job("d-1", "step", {}, created_at=NOW, attempts=3, error="x", **extra))
    r.lpush(keyspace.failed("q"), node_job("d-2", "step", {}, created_at=NOW, attempts=3, error="x", **extra))

    assert retry_job(r, "q", "d-1", keyspace=keyspace, actor="t") is JobState.FAILED  # by id: the pick script
    assert bulk(r, "q", JobState.FAILED, BulkAction.RETRY, keyspace=keyspace, actor="t").moved == 1  # the filter walk

    assert _ids(r, keyspace.lane("q", lane)) == ["d-1", "d-2"]
    assert all(decode_job(raw).attempts == 0 for raw in lrange(r, keyspace.lane("q", lane)))


def test_retry_promote_delete_and_purge_work_on_every_lanes_delayed_set(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)
    r.set(keyspace.paused("q", "low"), "1")

    assert retry_job(r, "q", "later-high", keyspace=keyspace, actor="t") is JobState.DELAYED
    assert promote_job(r, "q", "later-low", keyspace=keyspace, actor="t") is JobState.DELAYED
    assert delete_job(r, "q", "later-base", keyspace=keyspace, actor="t") is JobState.DELAYED

    assert _ids(r, keyspace.lane("q", "high"))[-1] == "later-high"
    assert _ids(r, keyspace.lane("q", "low"))[-1] == "later-low"
    assert r.exists(*keyspace.delayed_in_poll_order("q")) == 0

    node = NodeProducer(r, keyspace)
    node.push("q", "again-critical", "step", priority="critical", delay_s=60)
    node.push("q", "again-low", "step", priority="low", delay_s=60)
    assert bulk(r, "q", JobState.DELAYED, BulkAction.PROMOTE, keyspace=keyspace, actor="t").moved == 2
    assert _ids(r, keyspace.lane("q", "critical"))[-1] == "again-critical"
    assert _ids(r, keyspace.lane("q", "low"))[-1] == "again-low"

    node.push("q", "doomed", "step", priority="high", delay_s=60)
    purge(r, "q", confirm="q", keyspace=keyspace, actor="t")
    assert list(r.scan_iter(match=f"{keyspace.queue_prefix}*")) == []


def test_doctor_knows_every_lanes_delayed_set_and_paused_flag(r: redis.Redis, keyspace: KeySpace) -> None:
    _seed(r, keyspace)
    r.set(keyspace.paused("q", "low"), "1")

    report = run_doctor(r, keyspace=keyspace)

    assert report.ok and report.unrecognised == []
    lane = keyspace.lane("<name>", "<priority>")
    assert (report.patterns[f"{lane}:delayed"].keys, report.patterns[f"{lane}:delayed"].entries) == (2, 2)
    assert report.patterns[keyspace.delayed("<name>")].entries == 1
    assert report.patterns[f"{lane}:paused"].keys == 1


def test_a_python_job_delayed_in_a_lane_is_released_there_by_the_node_consumer(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    job_id = Producer(r, keyspace=keyspace).push("step", queue="q", priority="high", delay_s=60)
    ((_, score),) = cast("list[tuple[bytes, float]]", r.zrange(keyspace.delayed("q", "high"), 0, -1, withscores=True))
    ran: list[NodeJob] = []

    done = NodeConsumer(r, keyspace, ["q"], {"step": ran.append}, clock_ms=lambda: int(score)).drain()

    assert [(p.lane, p.outcome) for p in done] == [("high", "completed")]
    assert [job.id for job in ran] == [job_id]


def test_running_jobs_are_listed_found_and_searched_with_their_worker(r: redis.Redis, keyspace: KeySpace) -> None:
    r.lpush(keyspace.processing("q", "w-1"), node_job("run-1", "step", {}, created_at=NOW))
    r.lpush(keyspace.processing("q", "w-2"), node_job("run-2", "step", {}, created_at=NOW))
    r.lpush(keyspace.queue("q"), node_job("wait-1", "step", {}, created_at=NOW))

    active = list_jobs(r, "q", JobState.ACTIVE, keyspace=keyspace, oldest_first=True)
    assert [(e.job.id if e.job else None, e.worker) for e in active] == [("run-1", "w-1"), ("run-2", "w-2")]
    assert get_job(r, "q", "run-2", keyspace=keyspace).worker == "w-2"
    assert [(e.state, e.worker) for e in search(r, "run-1", keyspace=keyspace)] == [(JobState.ACTIVE, "w-1")]
    (snapshot,) = queue_snapshots(r, keyspace)
    assert (snapshot.waiting, snapshot.active) == (1, 2)
    with pytest.raises(ValueError, match="active jobs are running"):
        bulk(r, "q", JobState.ACTIVE, BulkAction.DELETE, keyspace=keyspace, actor="t")
