"""Events a worker staged with its acknowledgements reach the stream even when the worker dies first.

A worker appends its events to the stream at most every few tens of milliseconds; until then the
events of the jobs it acknowledged wait in its staged events list, pushed by the transaction that
acknowledged them (PROTOCOL 8.1). Whoever puts a dead worker's jobs back writes them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import redis
from event_stream import stream_events
from worker_helpers import dead_worker, node_raws, server_ms, wait_for

from zenith_protocol import EventType, KeySpace, LogLevel, decode_job, decode_log
from zenith_protocol.counters import COMPLETED_FIELD
from zenith_sdk.events import AttemptEvents, EventEmitter
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.scripts import scripts_for
from zenith_sdk.worker import recover_dead_workers, write_staged_events
from zenith_sdk.worker._recovery import put_back_reaped, take_back_leftovers


def _stage_completions(r: redis.Redis, space: KeySpace, worker_id: str, raws: list[bytes]) -> None:
    """Stage a completed event per job as the worker's acknowledging transactions do, two per transaction."""
    emitter = EventEmitter(r, keyspace=space)
    attempts = AttemptEvents(worker_id)
    for start in range(0, len(raws), 2):
        pipe = scripts_for(r).pipeline(transaction=True)
        batch = [attempts.completed("emails", decode_job(raw), 1, 5.0) for raw in raws[start : start + 2]]
        emitter.stage(pipe, worker_id, emitter.prepare(batch))
        pipe.execute()


def _completed(r: redis.Redis, space: KeySpace) -> Counter[str]:
    return Counter(e.job_id or "" for e in stream_events(r, space) if e.type == EventType.COMPLETED)


RECOVERIES: dict[str, Callable[[redis.Redis, KeySpace, str], object]] = {
    "recover_dead_workers": lambda r, space, worker: recover_dead_workers(r, space, ttl_s=0),
    "take_back_leftovers": lambda r, space, worker: take_back_leftovers(
        r, worker, ["emails"], keyspace=space, events=None
    ),
    "put_back_reaped": lambda r, space, worker: put_back_reaped(r, worker, ["emails"], keyspace=space),
    "write_staged_events": lambda r, space, worker: write_staged_events(r, worker, keyspace=space),
}


@pytest.mark.parametrize("recovery", sorted(RECOVERIES))
def test_a_dead_workers_staged_events_are_written_once_with_their_lines_and_counts(
    r: redis.Redis, keyspace: KeySpace, recovery: str
) -> None:
    done, running = node_raws("done", 5), node_raws("running", 1)
    dead_worker(r, keyspace, "dead-1", {"emails": running}, age_ms=60_000)
    _stage_completions(r, keyspace, "dead-1", done)
    assert _completed(r, keyspace) == Counter()

    RECOVERIES[recovery](r, keyspace, "dead-1")
    RECOVERIES[recovery](r, keyspace, "dead-1")  # a second recoverer finds nothing left to write

    assert _completed(r, keyspace) == Counter({f"done-{n}": 1 for n in range(5)})
    assert not r.exists(keyspace.staged_events("dead-1"))
    lines = [decode_log(raw) for raw in r.lrange(keyspace.logs_history(), 0, -1)]
    logged = sorted(line.job_id or "" for line in lines if line.level == LogLevel.SUCCESS)
    assert logged == [f"done-{n}" for n in range(5)]
    assert int(r.hget(keyspace.queue_counters("emails"), COMPLETED_FIELD) or 0) == 5


def test_the_sweep_writes_the_staged_events_of_a_worker_gone_with_no_job_in_hand(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    # Neither an index entry nor a processing list is left to find it by: only its staged events.
    _stage_completions(r, keyspace, "gone-1", node_raws("gone", 3))
    # Beside it, one that is alive (its heartbeat key is there) and one recently seen in the index.
    _stage_completions(r, keyspace, "alive-1", node_raws("alive", 2))
    r.set(keyspace.worker("alive-1"), "{}", px=60_000)
    _stage_completions(r, keyspace, "recent-1", node_raws("recent", 2))
    r.zadd(keyspace.worker_index(), {"recent-1": server_ms(r)})

    assert recover_dead_workers(r, keyspace, ttl_s=30, sweep=False) == {}
    assert _completed(r, keyspace) == Counter()

    assert recover_dead_workers(r, keyspace, ttl_s=30) == {"gone-1": {}}  # no job to put back

    assert _completed(r, keyspace) == Counter({f"gone-{n}": 1 for n in range(3)})
    assert not r.exists(keyspace.staged_events("gone-1"))
    assert r.llen(keyspace.staged_events("alive-1")) == 1
    assert r.llen(keyspace.staged_events("recent-1")) == 1


def test_a_staged_entry_that_does_not_decode_is_left_out_and_the_rest_written(
    r: redis.Redis, keyspace: KeySpace
) -> None:
    _stage_completions(r, keyspace, "dead-2", node_raws("ok", 2))
    r.rpush(keyspace.staged_events("dead-2"), b'{"type":"completed"}\nnot json\n')

    assert write_staged_events(r, "dead-2", keyspace=keyspace) == 2

    assert _completed(r, keyspace) == Counter({"ok-0": 1, "ok-1": 1})
    assert not r.exists(keyspace.staged_events("dead-2"))


WORKER_SCRIPT = """
import sys, time
import zenith_sdk.worker._runtime as runtime
from zenith_protocol import KeySpace
from zenith_sdk.worker import App, Worker, WorkerOptions

# The stream write waits for the worker to be idle or stopping, never for time: the events of the
# quick jobs stay staged while the long job runs, whatever the machine's speed.
runtime._MAX_WRITE_DELAY_S = 3600.0
url, space_json = sys.argv[1:3]
app = App()

@app.handler("quick")
def quick(job):
    pass

@app.handler("long")
def long(job):
    time.sleep(600)

options = WorkerOptions(queues=("staged",), concurrency=2, worker_id="staging-1", heartbeat_ttl_s=1,
                        heartbeat_interval_s=0.2, poll_interval_s=0.05)
Worker(app, url, keyspace=KeySpace.model_validate_json(space_json), options=options).run()
"""


def test_a_worker_killed_with_events_staged_leaves_them_to_its_recoverer(
    r: redis.Redis, keyspace: KeySpace, redis_url: str, tmp_path: Path
) -> None:
    producer = Producer(r, keyspace=keyspace)
    producer.push("long", queue="staged")
    quick = producer.push_many([JobSpec(name="quick", queue="staged") for _ in range(20)])
    script = tmp_path / "staging_worker.py"
    script.write_text(textwrap.dedent(WORKER_SCRIPT))
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(script), redis_url, keyspace.model_dump_json()], stderr=log)
    processing = keyspace.processing("staged", "staging-1")
    try:
        # Every quick job acknowledged: only the long one is still held, and nothing waits.
        wait_for(lambda: r.llen(processing) == 1 and r.llen(keyspace.queue("staged")) == 0, what="the quick jobs")
        assert decode_job(cast("bytes", r.lindex(processing, 0))).name == "long"
        assert _completed(r, keyspace) == Counter()
        assert r.llen(keyspace.staged_events("staging-1")) > 0
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()  # nothing more when it is dead already
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    wait_for(lambda: not r.exists(keyspace.worker("staging-1")), what="the heartbeat to expire")

    recover_dead_workers(r, keyspace, ttl_s=0)

    assert _completed(r, keyspace) == Counter({job_id: 1 for job_id in quick})
    assert not r.exists(keyspace.staged_events("staging-1"))
    assert r.llen(keyspace.queue("staged")) == 1  # the long job is back


def test_a_client_that_decodes_replies_writes_staged_events_too(
    r: redis.Redis, keyspace: KeySpace, redis_url: str
) -> None:
    _stage_completions(r, keyspace, "dead-3", node_raws("text", 3))
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)

    assert write_staged_events(decoding, "dead-3", keyspace=keyspace) == 3

    assert _completed(r, keyspace) == Counter({"text-0": 1, "text-1": 1, "text-2": 1})
    decoding.close()
