"""The SIGKILL proof: a real ``zenith worker --processes 3`` runs 2,000 jobs while its children are killed 50 times.

Every job must complete at least once and none may be left in a processing list; a job runs twice
only when its child was killed after the handler ran and before the acknowledgement landed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import psutil
import pytest
import redis
from cli_run import ZENITH, child_env, prefix_options
from patience import HANG_S
from wire_data import node_job

from zenith_protocol import KeySpace
from zenith_sdk.producer import JobSpec, Producer

JOBS = 2_000
NODE_SHAPED = 25
KILLS = 50
PROCESSES = 3
CONCURRENCY = 4
QUEUE = "kills"

APP_MODULE = """
import os
import time

import redis

from zenith_sdk.worker import App, JobContext

RUNS = redis.Redis.from_url(os.environ["KILLS_TEST_REDIS_URL"])
KEY = os.environ["KILLS_TEST_RUNS_KEY"]
app = App()


@app.handler("step")
def step(job: JobContext) -> None:
    time.sleep(0.005)  # long enough for kills to find jobs running
    RUNS.hincrby(KEY, job.id, 1)  # last: a job that got here has completed
"""


@pytest.fixture
def supervisor(tmp_path: Path, redis_url: str, keyspace: KeySpace) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``zenith worker`` under its supervisor, its worker id base and runs key; its processes are killed afterwards."""
    (tmp_path / "kills_app.py").write_text(textwrap.dedent(APP_MODULE), encoding="utf-8")
    base = f"kills-{uuid.uuid4().hex[:8]}"
    runs_key = f"{keyspace.zenith_prefix}test-runs"
    env = {**child_env(), "KILLS_TEST_REDIS_URL": redis_url, "KILLS_TEST_RUNS_KEY": runs_key}
    argv = ["worker", "kills_app:app", "--queues", QUEUE, "--worker-id", base]
    # --prefetch 0: a child holds only the jobs it runs, so a kill re-runs at most one job per slot. With
    # the default prefetch it holds up to five per slot (acks are batched), and a kill may re-run that many.
    argv += ["--processes", str(PROCESSES), "--concurrency", str(CONCURRENCY), "--prefetch", "0"]
    argv += ["--redis", redis_url, *prefix_options(keyspace)]
    process = subprocess.Popen(
        [*ZENITH, *argv], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process, base, runs_key
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
        process.communicate(timeout=HANG_S)


def _push(r: redis.Redis, keyspace: KeySpace) -> list[str]:
    """2,000 jobs: most from the Python producer, a few exactly as the Node producer's LPUSH writes them."""
    ids = Producer(r, keyspace=keyspace).push_many(
        [JobSpec(name="step", properties={"n": n}, queue=QUEUE) for n in range(JOBS - NODE_SHAPED)]
    )
    node_ids = [f"1700000000000-node{n:03d}" for n in range(NODE_SHAPED)]
    for n, job_id in enumerate(node_ids):
        r.lpush(keyspace.queue(QUEUE), node_job(job_id, "step", {"n": n}, created_at=1700000000000))
    return [*ids, *node_ids]


def _registered(r: redis.Redis, keyspace: KeySpace, base: str) -> list[str]:
    """The worker ids in the index that are children of this supervisor (``<base>-<slot>-<pid>``)."""
    members = cast("list[bytes]", r.zrange(keyspace.worker_index(), 0, -1))
    return [member.decode() for member in members if member.decode().startswith(f"{base}-")]


def _alive(process: psutil.Process) -> bool:
    """Whether ``process`` runs and is no zombie (one that exits meanwhile is not alive)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _running_workers(r: redis.Redis, keyspace: KeySpace, base: str, supervisor_pid: int) -> list[int]:
    """Pids of the children that run as workers now: alive, and beating under ``<base>-<slot>-<pid>``."""
    alive = {child.pid for child in psutil.Process(supervisor_pid).children() if _alive(child)}
    ids = _registered(r, keyspace, base)
    pipe = r.pipeline(transaction=False)
    for worker_id in ids:
        pipe.exists(keyspace.worker(worker_id))
    beating = pipe.execute() if ids else []
    pids = [int(worker_id.rsplit("-", 1)[1]) for worker_id in ids]
    return [pid for pid, beats in zip(pids, beating) if beats and pid in alive]


def _processing_lists(r: redis.Redis, keyspace: KeySpace) -> list[bytes]:
    return list(r.scan_iter(match=keyspace.processing(QUEUE, "*"), count=1000))


class _Stalled:
    """Fails a wait once what it watches has not changed for ``HANG_S``: a hang guard, not a time limit."""

    def __init__(self, process: subprocess.Popen[str], what: str) -> None:
        self.process = process
        self.what = what
        self.seen: object = None
        self.since = time.monotonic()

    def check(self, state: object) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the supervisor stopped: {self.process.communicate()[1][-2000:]}")
        if state != self.seen:
            self.seen, self.since = state, time.monotonic()
        assert time.monotonic() - self.since < HANG_S, f"{self.what} stalled at {state}"


def _kill_children_while_jobs_run(
    r: redis.Redis, keyspace: KeySpace, process: subprocess.Popen[str], base: str, runs_key: str, seed: int
) -> set[int]:
    """SIGKILL a random running worker child each time another share of the jobs has completed; their pids."""
    rng = random.Random(seed)
    every = JOBS // (KILLS + 10)  # the last kill is due well before the last job completes
    killed: set[int] = set()
    stalled = _Stalled(process, f"killing (seed {seed}): completed jobs, kills")
    while len(killed) < KILLS:
        completed = r.hlen(runs_key)
        stalled.check((completed, len(killed)))
        targets = [pid for pid in _running_workers(r, keyspace, base, process.pid) if pid not in killed]
        if completed >= (len(killed) + 1) * every and targets:
            victim = rng.choice(targets)
            os.kill(victim, signal.SIGKILL)
            killed.add(victim)
        else:
            time.sleep(0.01)
    return killed


def _wait_until_all_done(r: redis.Redis, keyspace: KeySpace, process: subprocess.Popen[str], runs_key: str) -> None:
    """Until every job has completed and no job waits or sits in a processing list."""
    stalled = _Stalled(process, "the end: completed jobs, processing lists, waiting jobs")
    while True:
        state = (r.hlen(runs_key), len(_processing_lists(r, keyspace)), r.llen(keyspace.queue(QUEUE)))
        if state[0] >= JOBS and not any(state[1:]):
            return
        stalled.check(state)
        time.sleep(0.05)


def test_fifty_sigkills_lose_no_job_and_leave_no_processing_list(
    r: redis.Redis, keyspace: KeySpace, supervisor: tuple[subprocess.Popen[str], str, str]
) -> None:
    process, base, runs_key = supervisor
    seed = random.randrange(2**32)
    started = time.monotonic()
    ids = _push(r, keyspace)
    killed = _kill_children_while_jobs_run(r, keyspace, process, base, runs_key, seed)
    _wait_until_all_done(r, keyspace, process, runs_key)
    elapsed_s = time.monotonic() - started
    children = psutil.Process(process.pid).children()

    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=HANG_S)

    runs = {key.decode(): int(value) for key, value in cast("dict[bytes, bytes]", r.hgetall(runs_key)).items()}
    twice = sorted(job_id for job_id, count in runs.items() if count > 1)
    print(
        f"\n{len(ids)} jobs, {len(killed)} SIGKILLs of {PROCESSES} children of {CONCURRENCY} slots, "
        f"{len(twice)} jobs ran more than once ({sum(runs.values()) - len(runs)} extra runs), "
        f"{elapsed_s:.1f} s (seed {seed})"
    )
    assert process.returncode == 0, err[-2000:]
    assert sorted(runs) == sorted(ids)  # every job completed at least once, and nothing else ran
    # A killed child re-runs at most the jobs its processing list held: with --prefetch 0, one per slot.
    assert len(twice) <= KILLS * CONCURRENCY
    # Each kill is a death from outside after the child was up: restarted at once, never a crash loop.
    assert err.count("ended with signal 9; another starts in 0.0 s") == KILLS, err[-2000:]
    assert "giving up" not in err and "Traceback" not in err
    assert f"jobs {base}-" in err  # the supervisor put back what killed children held, at once
    assert not _processing_lists(r, keyspace)
    assert r.llen(keyspace.queue(QUEUE)) == 0 and r.llen(keyspace.failed(QUEUE)) == 0
    assert _registered(r, keyspace, base) == []
    assert not [child for child in children if _alive(child)]
