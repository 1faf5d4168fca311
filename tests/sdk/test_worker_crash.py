"""A worker killed with SIGKILL mid-job, again and again, loses no job and completes none twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import redis
from event_stream import stream_events
from patience import HANG_S

from zenith_protocol import EventType, KeySpace
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.worker import recover_dead_workers

KILLS = 20
JOBS = 300

WORKER_SCRIPT = """
import json, random, sys, time
import redis
from zenith_protocol import KeySpace
from zenith_sdk.worker import App, Worker, WorkerOptions

url, space_json, runs_key, worker_id = sys.argv[1:5]
space = KeySpace.model_validate_json(space_json)
log = redis.Redis.from_url(url)
app = App()

@app.handler("work")
def work(job):
    log.rpush(runs_key, json.dumps([job.id, time.time_ns()]))
    time.sleep(random.uniform(0.002, 0.03))

options = WorkerOptions(
    queues=("crash",), concurrency=4, prefetch=4, heartbeat_interval_s=0.2, heartbeat_ttl_s=1,
    recovery_interval_s=0.3, worker_id=worker_id,
)
Worker(app, url, keyspace=space, options=options).run()
"""


def _spawn(tmp_path: Path, url: str, space: KeySpace, runs_key: str, worker_id: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "crash_worker.py"
    script.write_text(textwrap.dedent(WORKER_SCRIPT))
    args = [sys.executable, str(script), url, space.model_dump_json(), runs_key, worker_id]
    with open(tmp_path / f"{worker_id}.log", "wb") as log:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)


def _wait_for(condition: object, timeout_s: float = HANG_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def _completions(r: redis.Redis, space: KeySpace) -> dict[str, list[int]]:
    done: dict[str, list[int]] = {}
    for event in stream_events(r, space):
        if event.type == EventType.COMPLETED and event.job_id:
            done.setdefault(event.job_id, []).append(event.timestamp)
    return done


def test_sigkill_mid_job_twenty_times_loses_nothing_and_completes_nothing_twice(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, tmp_path: Path
) -> None:
    runs_key = f"{keyspace.zenith_prefix}test-runs"
    ids = Producer(r, keyspace=keyspace).push_many([JobSpec(name="work", queue="crash") for _ in range(JOBS)])
    killed_mid_job = 0
    for round_no in range(KILLS):
        worker_id = f"crash-{round_no}"
        runs_before = r.llen(runs_key)
        proc = _spawn(tmp_path, redis_url, keyspace, runs_key, worker_id)
        try:
            processing = keyspace.processing("crash", worker_id)
            _wait_for(lambda: r.llen(runs_key) >= runs_before + 3 and r.llen(processing) > 0)
            killed_mid_job += int(r.llen(processing) > 0)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        # The dead worker's heartbeat expires; then its in-flight jobs go back to the queue.
        _wait_for(lambda: not r.exists(keyspace.worker(worker_id)))
        recover_dead_workers(r, keyspace, ttl_s=0)
        assert r.llen(keyspace.processing("crash", worker_id)) == 0

    final = _spawn(tmp_path, redis_url, keyspace, runs_key, "crash-final")
    try:
        _wait_for(lambda: len(_completions(r, keyspace)) == JOBS)
    finally:
        final.send_signal(signal.SIGTERM)
        final.wait(20)
    assert final.returncode == 0, (tmp_path / "crash-final.log").read_text()

    completions = _completions(r, keyspace)
    assert killed_mid_job == KILLS
    assert set(completions) == set(ids), "a job was lost"
    assert [job for job, times in completions.items() if len(times) != 1] == [], "a job completed twice"
    starts = Counter[str]()
    late = []
    for raw in r.lrange(runs_key, 0, -1):
        job_id, started_ns = json.loads(raw)
        starts[job_id] += 1
        if started_ns // 1_000_000 > completions[job_id][0]:
            late.append(job_id)
    assert late == [], "a job ran again after it had completed"
    assert sum(starts.values()) >= JOBS
    for key in (keyspace.queue("crash"), keyspace.failed("crash"), keyspace.delayed("crash")):
        assert r.exists(key) == 0, key
    leftovers = [k for k in r.scan_iter(match=f"{keyspace.queue_prefix}crash:processing:*")]
    assert leftovers == []
