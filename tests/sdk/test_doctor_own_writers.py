"""What this package's producer, worker, scheduler and pulse write, ``zenith doctor`` finds canonical."""

from __future__ import annotations

import json
import threading
import time

import redis
from cli_run import prefix_options, zenith
from worker_fixtures import StartWorker
from worker_helpers import dead_worker, idle, make_due, retry_attempts, wait_for

from zenith_protocol import JobPayload, KeySpace, encode_job
from zenith_sdk.control import (
    BulkAction,
    JobState,
    bulk,
    clear_failed,
    delete_job,
    pause,
    purge,
    repair_groups,
    resume,
    retry_job,
)
from zenith_sdk.doctor import run_doctor
from zenith_sdk.events import EventEmitter
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.pulse import Pulse
from zenith_sdk.schedules import Scheduler
from zenith_sdk.worker import App, JobContext

ODD_TEXT = {"x": 1.0, "big": 1e21, "small": 1e-7, "path": "/a/zoë", "sep": "\u2028", "tab": "\t", "markup": "[b]"}
"""Properties that a careless encoder would write in a non-canonical form."""


def test_everything_our_writers_write_is_canonical(
    redis_url: str, r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    attempts: dict[str, list[int]] = {}
    lock = threading.Lock()

    def run(job: JobContext) -> None:
        with lock:
            attempts.setdefault(job.name or "", []).append(job.attempt)
        if job.name == "boom" or (job.name == "flaky" and job.attempt == 1):
            raise RuntimeError(f"{job.name} failed / é")

    producer.push("ok", ODD_TEXT, queue="q")
    producer.push("ok", {}, queue="q", job_type="class", priority="critical")
    producer.push("flaky", {}, queue="q", priority="high", retry_after_s=100.5, retry_multiplier=3)
    producer.push("boom", {}, queue="q", max_attempts=2, retry_after_s=100)  # one retry, then a dead letter
    producer.push("grouped", {"n": 1}, queue="q", group_id="tenant-1")
    producer.push("later", {}, queue="q", delay_s=600, priority="low")  # stays in its delayed set
    producer.push("nobody-runs-me", {}, queue="q")  # no handler: dead-lettered at once
    r.lpush(keyspace.queue("q"), "not a job")  # undecodable: dead-lettered in a wrapper job
    orphan = encode_job(JobPayload.create("ok", {"orphan": True}))
    dead_worker(r, keyspace, "dead-1", {"q": [orphan.encode()]}, age_ms=60_000)  # put back and run
    scheduler = Scheduler(r, keyspace=keyspace)
    scheduler.register("nightly", "0 3 * * *", "q", "ok", {"from": "cron"}, actor="ops", timezone="Europe/Berlin")
    scheduler.run_now("nightly", actor="ops")
    scheduler.tick(now_ms=int(time.time() * 1000) + 86_400_000)
    handlers = {name: run for name in ("ok", "flaky", "boom", "grouped")}
    worker = start_worker(App(handlers), queues=("q",), recovery_interval_s=0.1)
    Pulse("billing", r, keyspace=keyspace, framework="zenith [tests]").beat()

    wait_for(
        lambda: (
            retry_attempts(r, keyspace.delayed("q")) == [1] and retry_attempts(r, keyspace.delayed("q", "high")) == [1]
        ),
        what="both retries",
    )
    make_due(r, keyspace.delayed("q"))
    make_due(r, keyspace.delayed("q", "high"))
    wait_for(
        lambda: (
            r.llen(keyspace.failed("q")) == 3
            and attempts.get("flaky") == [1, 2]
            and len(attempts.get("ok", [])) == 5
            and r.llen(keyspace.queue("q")) == 0
            and idle(r, keyspace, worker, "q")
        ),
        what="every job to be run or dead-lettered",
    )

    report = run_doctor(r, keyspace=keyspace, now_ms=int(time.time() * 1000))

    assert report.ok, [issue for stats in report.patterns.values() for issue in stats.issues.values()]
    for stats in report.patterns.values():
        assert (stats.legacy, stats.not_canonical, stats.invalid, stats.issues) == (0, 0, 0, {}), stats.pattern
        assert stats.canonical == stats.entries
    assert {
        f"{keyspace.lane('<name>', '<priority>')}:delayed",
        keyspace.failed("<name>"),
        keyspace.schedules(),
        keyspace.schedule("<id>"),
        keyspace.worker("<workerId>"),
        keyspace.worker_index(),
        keyspace.worker_queues(),
        keyspace.queue_index(),
        keyspace.pulse("<service>", "<nodeId>"),
        keyspace.events(),
        keyspace.logs_history(),
        keyspace.throughput("<epochMinute>"),
    } <= set(report.patterns)
    assert report.patterns[keyspace.events()].entries == r.xlen(keyspace.events()) > 20
    assert report.patterns[keyspace.failed("<name>")].canonical == 3

    result = zenith("doctor", "--json", "--redis", redis_url, *prefix_options(keyspace))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["errors"], summary["notCanonical"], summary["invalid"]) == (True, 0, 0, 0)


def _failed(job_id: str, group_id: str | None = None) -> bytes:
    job = JobPayload.create("step", {"n": job_id}, job_id=job_id, group_id=group_id)
    return encode_job(job.model_copy(update={"attempts": 3, "error": "boom", "failed_at_ms": 1})).encode()


def test_what_operator_actions_write_is_canonical(r: redis.Redis, keyspace: KeySpace, producer: Producer) -> None:
    audit = EventEmitter(r, keyspace=keyspace)
    r.lpush(keyspace.failed("q"), *(_failed(f"f-{n}") for n in range(5)))
    producer.push_many([JobSpec(name="step", queue="q", job_id=f"w-{n}") for n in range(3)])
    # A group an older version left stuck: held, its next job parked in the pending list.
    r.sadd(keyspace.group_active("q"), "g")
    r.lpush(keyspace.group_pending("q", "g"), encode_job(JobPayload.create("step", job_id="g-1", group_id="g")))
    r.lpush(keyspace.failed("q"), _failed("g-0", group_id="g"))

    pause(r, "q", actor="ops", keyspace=keyspace, events=audit)
    resume(r, "q", actor="ops", keyspace=keyspace, events=audit)
    retry_job(r, "q", "f-0", actor="ops", keyspace=keyspace, events=audit)
    delete_job(r, "q", "f-1", actor="ops", keyspace=keyspace, events=audit)
    bulk(r, "q", JobState.FAILED, BulkAction.RETRY, ids=["f-2"], actor="ops", keyspace=keyspace, events=audit)
    repaired = repair_groups(r, keyspace, actor="ops", events=audit)
    clear_failed(r, "q", actor="ops", keyspace=keyspace, events=audit)
    purge(r, "q", confirm="q", actor="ops", keyspace=keyspace, events=audit)

    assert [repair.outcome for repair in repaired] == ["released"]
    report = run_doctor(r, keyspace=keyspace, now_ms=int(time.time() * 1000))
    stream = report.patterns[keyspace.events()]
    assert report.ok, [issue for stats in report.patterns.values() for issue in stats.issues.values()]
    assert stream.entries >= 12  # pause, resume, a retried and a deleted job, the bulk, the repair, clear, purge
    assert (stream.not_canonical, stream.invalid, stream.canonical) == (0, 0, stream.entries)
