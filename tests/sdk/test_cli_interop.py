"""The ``zenith`` command on data Node writes: lanes, their delayed sets and flags, FIFO groups, stuck groups.

Every case runs the real console script as a child process and checks its exit status, its
output and that no traceback reaches standard error.
"""

from __future__ import annotations

import json

import pytest
import redis
from cli_run import Result, prefix_options, zenith
from node_consumer import NodeProducer
from wire_data import node_job

from zenith_protocol import KeySpace, decode_job
from zenith_sdk.producer import JobSpec, Producer

NOW = 1_767_225_600_000


@pytest.fixture
def opts(redis_url: str, keyspace: KeySpace) -> list[str]:
    """``--redis`` and every prefix option, pointing the command at this test's key space."""
    return ["--redis", redis_url, *prefix_options(keyspace)]


def ok(result: Result, status: int = 0) -> str:
    """The standard output of a run that ended with ``status`` and printed no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.args, result.stdout, result.stderr)
    return result.stdout


def _seed(r: redis.Redis, space: KeySpace) -> None:
    """Node's writes: jobs in two lanes, a lane's delayed job, a lane paused on its own, a group with one waiting."""
    node = NodeProducer(r, space, clock_ms=lambda: NOW)
    node.push("q", "crit-1", "step", priority="critical")
    node.push("q", "base-1", "step")
    node.push("q", "high-later", "step", priority="high", delay_s=60)
    node.push("q", "g-first", "step", group="tenant-7")
    node.push("q", "g-second", "step", group="tenant-7")
    r.set(space.paused("q", "low"), "1")


def test_queues_and_jobs_show_lanes_groups_and_paused_lanes(
    r: redis.Redis, keyspace: KeySpace, opts: list[str]
) -> None:
    _seed(r, keyspace)

    (queue,) = json.loads(ok(zenith("queues", "--json", *opts)))
    assert (queue["waiting"], queue["grouped"], queue["delayed"], queue["pausedLanes"]) == (3, 1, 1, ["low"])
    table = ok(zenith("queues", *opts))
    assert "grouped" in table and "low only" in table

    waiting = json.loads(ok(zenith("jobs", "q", "--oldest-first", "--json", *opts)))
    assert [(job["job"]["id"], job["lane"]) for job in waiting] == [
        ("crit-1", "critical"),
        ("base-1", None),
        ("g-first", None),
    ]
    grouped = ok(zenith("jobs", "q", "--state", "grouped", *opts))
    assert "g-second" in grouped and "tenant-7" in grouped and "group" in grouped
    delayed = json.loads(ok(zenith("jobs", "q", "--state", "delayed", "--json", *opts)))
    assert [(job["job"]["id"], job["lane"], job["dueAt"]) for job in delayed] == [("high-later", "high", NOW + 60_000)]
    assert "critical" in ok(zenith("jobs", "q", *opts))  # the lane column


def test_delete_by_id_takes_a_groups_job_and_the_one_behind_it(
    r: redis.Redis, keyspace: KeySpace, opts: list[str]
) -> None:
    _seed(r, keyspace)

    out = json.loads(ok(zenith("delete", "q", "g-first", "g-second", "--yes", "--json", "--actor", "ann", *opts)))

    assert (out["moved"], out["notFound"]) == (2, [])
    assert r.exists(keyspace.group_pending("q", "tenant-7")) == 0
    assert r.sismember(keyspace.group_active("q"), "tenant-7") == 0
    assert [decode_job(raw).id for raw in r.lrange(keyspace.queue("q"), 0, -1)] == ["base-1"]


def test_pause_and_resume_set_and_clear_every_lanes_flag(r: redis.Redis, keyspace: KeySpace, opts: list[str]) -> None:
    _seed(r, keyspace)

    ok(zenith("pause", "q", *opts))
    assert [r.get(flag) for flag in keyspace.paused_in_poll_order("q")] == [b"1"] * 4
    ok(zenith("resume", "q", *opts))
    assert r.exists(*keyspace.paused_in_poll_order("q")) == 0


def _stuck(r: redis.Redis, space: KeySpace, *, dead_letter: bool) -> None:
    """A group an older worker left stuck: Node admitted its job, the worker parked it behind the held group."""
    node = NodeProducer(r, space)
    parked = node.push("q", "parked", "step", group="tenant-9")
    r.lrem(space.queue("q"), 1, parked.decode())
    r.rpush(space.group_pending("q", "tenant-9"), parked)
    Producer(r, keyspace=space).push_many([JobSpec(name="step", queue="q", job_id=f"other-{n}") for n in range(2)])
    if dead_letter:
        r.lpush(space.failed("q"), node_job("old", "step", {}, created_at=NOW, groupId="tenant-9", attempts=3))


def test_doctor_finds_a_stuck_group_and_recover_lets_it_go_on(
    r: redis.Redis, keyspace: KeySpace, opts: list[str]
) -> None:
    _stuck(r, keyspace, dead_letter=True)

    doctor = zenith("doctor", *opts)
    assert "FIFO group 'tenant-9' in queue 'q': 1 job waits" in ok(doctor, 1) and "`zenith recover`" in doctor.stdout
    report = json.loads(ok(zenith("doctor", "--json", *opts), 1))
    assert report["stuckGroups"] == [{"group": "tenant-9", "queue": "q", "held": True, "pending": 1}]

    recovered = json.loads(ok(zenith("recover", "--json", *opts)))

    assert recovered["groups"] == [
        {"group": "tenant-9", "outcome": "released", "queue": "q", "jobId": "parked", "pending": 1}
    ]
    assert decode_job(r.lindex(keyspace.queue("q"), 0) or b"").id == "parked"
    assert "OK" in ok(zenith("doctor", *opts))


def test_recover_asks_for_the_queue_of_a_stuck_group_nothing_tells(
    r: redis.Redis, keyspace: KeySpace, opts: list[str]
) -> None:
    _stuck(r, keyspace, dead_letter=False)

    assert "--group-queue tenant-9=QUEUE" in ok(zenith("doctor", *opts), 1)
    unknown = zenith("recover", *opts)
    assert "pass --group-queue tenant-9=QUEUE" in ok(unknown, 1)
    assert r.llen(keyspace.group_pending("q", "tenant-9")) == 1

    assert "fetchable again in queue q" in ok(zenith("recover", "--group-queue", "tenant-9=q", *opts))
    assert r.exists(keyspace.group_pending("q", "tenant-9")) == 0
    bad = zenith("recover", "--group-queue", "tenant-9", *opts)
    assert bad.returncode == 2 and "GROUP=QUEUE" in bad.stderr and "Traceback" not in bad.stderr


def test_doctor_warns_about_the_processing_list_of_a_worker_that_is_gone(
    r: redis.Redis, keyspace: KeySpace, opts: list[str]
) -> None:
    r.lpush(keyspace.processing("q", "ghost-1"), node_job("lost", "step", {}, created_at=NOW))

    out = ok(zenith("doctor", *opts))  # recoverable by any running worker: a warning, not an error

    assert "worker ghost-1 is gone" in out and "zenith recover" in out
    assert json.loads(ok(zenith("recover", "--json", *opts)))["workers"] == {"ghost-1": {"q": 1}}
