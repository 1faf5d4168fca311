"""The archiver SIGKILLed mid-batch, 20 times, and restarted: the archive equals the stream.

Half of the kills land inside a batch's transaction (before its commit), half between the
commit and the acknowledgement; every other restart uses a new consumer name, so that the
entries the dead one held are taken over by ``XAUTOCLAIM`` instead of being re-read as its own.
"""

from __future__ import annotations

import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from patience import HANG_S
from sqlalchemy.engine import Engine

from archive.conftest import url_of
from archive.helpers import archived_ids, emit, rows, stream_ids
from zenith_archive.schema import jobs, legacy_job_archive
from zenith_protocol import EventType, JobEvent, JobPayload, KeySpace
from zenith_sdk.events import job_event

CHILD = Path(__file__).with_name("archiver_child.py")
KILLS = 20
CLAIM_IDLE_MS = 300


def _jobs(rng: random.Random, first: int, count: int) -> tuple[list[JobEvent], dict[str, str]]:
    """Events of ``count`` jobs with random outcomes, and the state each job must end in."""
    events: list[JobEvent] = []
    expected: dict[str, str] = {}
    for number in range(first, first + count):
        job = JobPayload.create("Resize", {"n": number}, job_id=f"job-{number}")
        events.append(job_event(EventType.ENQUEUED, "images", job, include_payload=True))
        outcome = rng.choice(("completed", "dead", "active", "waiting"))
        if outcome != "waiting":
            events.append(job_event(EventType.STARTED, "images", job, worker_id="w", attempt=1))
        if outcome == "completed":
            events.append(job_event(EventType.COMPLETED, "images", job, worker_id="w", attempt=1, duration_ms=3.0))
        elif outcome == "dead":
            events.append(job_event(EventType.FAILED, "images", job, worker_id="w", attempt=1, error="boom"))
            events.append(job_event(EventType.DEAD_LETTERED, "images", job, include_payload=True, error="boom"))
        expected[job.id] = outcome
    events.append(job_event(EventType.OPERATOR, "images", action="pause", actor="ops", count=0))
    return events, expected


class _Child:
    def __init__(self, url: str, redis_url: str, prefix: str, consumer: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), url, redis_url, prefix, consumer, str(CLAIM_IDLE_MS)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def wait_for(self, word: str) -> None:
        """Read the child's lines until ``word``; fails if it says nothing for HANG_S or exits."""
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            ready, _, _ = select.select([stdout], [], [], HANG_S)
            assert ready, f"the archiver said nothing for {HANG_S} s while the test waited for {word!r}"
            line = stdout.readline()
            assert line, f"the archiver exited ({self.process.wait()}) before saying {word!r}"
            if line.strip() == word:
                return

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=HANG_S)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return status


def _wait_until_archived(r: redis.Redis, space: KeySpace, engine: Engine) -> None:
    deadline = time.monotonic() + HANG_S
    while len(archived_ids(engine)) < len(stream_ids(r, space)):
        assert time.monotonic() < deadline, "the archiver did not catch up with the stream"
        time.sleep(0.05)


def test_sigkill_mid_batch_twenty_times_loses_and_duplicates_nothing(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, redis_url: str
) -> None:
    rng = random.Random(8)
    expected: dict[str, str] = {}
    events, more = _jobs(rng, 0, 200)
    emit(r, keyspace, *events)
    expected |= more
    url = url_of(engine)
    for kill in range(KILLS):
        consumer = "archiver" if kill % 2 == 0 else f"archiver-{kill}"
        child = _Child(url, redis_url, keyspace.zenith_prefix, consumer)
        child.wait_for("started")
        # Let a few batches through, then kill inside a transaction or between commit and XACK.
        for _ in range(rng.randint(0, 2)):
            child.wait_for("pre-ack")
        child.wait_for("pre-commit" if kill % 2 == 0 else "pre-ack")
        child.kill()
        events, more = _jobs(rng, 200 + 20 * kill, 20)  # the producers go on meanwhile
        emit(r, keyspace, *events)
        expected |= more
    last = _Child(url, redis_url, keyspace.zenith_prefix, "archiver")
    last.wait_for("started")
    _wait_until_archived(r, keyspace, engine)
    assert last.stop() == 0

    archived = archived_ids(engine)
    assert sorted(archived) == sorted(stream_ids(r, keyspace))  # no gap, and no duplicate
    assert len(set(archived)) == len(archived)
    states = {row["job_id"]: row["state"] for row in rows(engine, jobs)}
    assert states == expected
    legacy = [(row["job_id"], row["status"]) for row in rows(engine, legacy_job_archive)]
    finished = {job_id: state for job_id, state in expected.items() if state in ("completed", "dead")}
    assert sorted(legacy) == sorted(
        (job_id, "completed" if s == "completed" else "failed") for job_id, s in finished.items()
    )
    groups = r.xinfo_groups(keyspace.events())
    assert [(g["name"], g["pending"]) for g in groups] == [(b"archive", 0)]
