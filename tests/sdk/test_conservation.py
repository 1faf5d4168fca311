"""Conservation of jobs: no sequence of control operations, pushes, fetches and settles loses or duplicates one.

A hypothesis state machine drives a real Redis through the same calls the producer, the worker
loop and the control plane make, interleaved arbitrarily, and after every step checks that every
job pushed sits in exactly one place (a waiting lane, the delayed set, the failed list or one
worker's processing list) unless it was completed or deleted, in which case it is nowhere.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import ClassVar, cast

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from zenith_protocol import KeySpace, NotFoundError, decode_job
from zenith_sdk.control import (
    BulkAction,
    JobFilter,
    JobState,
    _pick,
    bulk,
    clear_failed,
    delete_job,
    pause,
    promote_job,
    resume,
    retry_job,
)
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.scripts import Scripts
from zenith_sdk.worker._outcomes import Fetched, failure
from zenith_sdk.worker._recovery import requeue_processing

QUEUE = "conserve"
WORKERS = ("w1", "w2")
NAMES = ("alpha", "beta")
LANES = (None, "critical", "high", "low")
DELAYS = (None, None, 10.0, 30.0)  # never due within a run by themselves: only make_due makes them due
ACTOR = "conservation-test"
COMBOS = (
    (BulkAction.RETRY, JobState.FAILED),
    (BulkAction.RETRY, JobState.DELAYED),
    (BulkAction.DELETE, JobState.FAILED),
    (BulkAction.DELETE, JobState.DELAYED),
    (BulkAction.DELETE, JobState.WAITING),
    (BulkAction.PROMOTE, JobState.DELAYED),
)

Where = dict[str, list[tuple[str, bytes]]]


class ConservationMachine(RuleBasedStateMachine):
    """Producers, two simulated workers and an operator, against one queue of a private key space.

    Subclass it with ``redis_url`` set to run it (the test binds the session's server).
    """

    redis_url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.tag = f"t{uuid.uuid4().hex[:10]}"
        self.space = KeySpace(
            queue_prefix=f"{self.tag}:queue:",
            console_prefix=f"{self.tag}:flux_console:",
            pulse_prefix=f"{self.tag}:pulse:",
            legacy_pulse_prefix=f"{self.tag}:gravito:quasar:node:",
            command_prefix=f"{self.tag}:gravito:quasar:cmd:",
            settings_prefix=f"{self.tag}:gravito:zenith:",
            zenith_prefix=f"{self.tag}:zenith:",
        )
        self.r = redis.Redis.from_url(self.redis_url)
        self.scripts = Scripts(self.r)
        self.scripts.load(self.r)
        self.producer = Producer(self.r, keyspace=self.space, events=False)
        # Nothing here ever deletes this key: its absence means another process emptied the database.
        self.sentinel = f"{self.tag}:sentinel"
        self.r.set(self.sentinel, "1")
        self.next_id = 0
        self.pushed: set[str] = set()
        self.names: dict[str, str] = {}
        self.completed: set[str] = set()
        self.deleted: set[str] = set()
        self.held: dict[str, list[bytes]] = {w: [] for w in WORKERS}
        self.stale: dict[str, list[bytes]] = {w: [] for w in WORKERS}
        self.paused = False

    def teardown(self) -> None:
        keys = list(self.r.scan_iter(match=f"{self.tag}:*", count=1000))
        for start in range(0, len(keys), 500):
            self.r.delete(*keys[start : start + 500])
        self.r.close()

    # -- reading Redis -------------------------------------------------------------------------

    def _where(self) -> Where:
        """Every entry of every place a job can be, decoded to its id, in one round trip."""
        space = self.space
        lists = [(f"lane:{key}", key) for key in space.lanes_in_poll_order(QUEUE)]
        lists.append(("failed", space.failed(QUEUE)))
        lists += [(f"processing:{w}", space.processing(QUEUE, w)) for w in WORKERS]
        pipe = self.r.pipeline(transaction=False)
        for _, key in lists:
            pipe.lrange(key, 0, -1)
        pipe.zrange(space.delayed(QUEUE), 0, -1)
        replies = cast("list[list[bytes]]", pipe.execute())
        names = [name for name, _ in lists] + ["delayed"]
        return {name: [(decode_job(raw).id, raw) for raw in raws] for name, raws in zip(names, replies, strict=True)}

    @staticmethod
    def _in_state(where: Where, state: JobState) -> list[str]:
        if state is JobState.WAITING:
            return [job_id for name, rows in where.items() if name.startswith("lane:") for job_id, _ in rows]
        return [job_id for job_id, _ in where[state.value]]

    def _known_ids(self, data: st.DataObject) -> list[str]:
        """A random subset of the ids ever pushed (moved, completed and deleted ones included) and an unknown one."""
        pool = sorted(self.pushed) + ["never-pushed"]
        return data.draw(st.lists(st.sampled_from(pool), max_size=6, unique=True), label="ids")

    # -- producers -----------------------------------------------------------------------------

    @rule(
        count=st.integers(1, 4),
        single=st.booleans(),
        lane=st.sampled_from(LANES),
        delay=st.sampled_from(DELAYS),
        name=st.sampled_from(NAMES),
    )
    def push(self, count: int, single: bool, lane: str | None, delay: float | None, name: str) -> None:
        ids = [f"job-{self.next_id + n}" for n in range(count)]
        self.next_id += count
        if single:
            ids = ids[:1]
            got = [self.producer.push(name, {"n": 1}, queue=QUEUE, job_id=ids[0], priority=lane, delay_s=delay)]
        else:
            specs = [
                JobSpec(name=name, properties={"n": i}, queue=QUEUE, job_id=job_id, priority=lane, delay_s=delay)
                for i, job_id in enumerate(ids)
            ]
            got = self.producer.push_many(specs)
        assert got == ids
        self.pushed.update(ids)
        self.names.update(dict.fromkeys(ids, name))

    @initialize(count=st.integers(2, 6), lane=st.sampled_from(LANES))
    def backlog(self, count: int, lane: str | None) -> None:
        """Every run starts with work waiting, so short runs still reach the workers."""
        self.push(count, False, lane, None, NAMES[0])

    @rule(data=st.data())
    def make_due(self, data: st.DataObject) -> None:
        by_id = dict(self._where()["delayed"])
        if not by_id:
            return
        # Drawn by id, not by position: equal scores order by bytes, which hold the push time.
        chosen = data.draw(st.lists(st.sampled_from(sorted(by_id)), min_size=1, unique=True), label="due")
        self.r.zadd(self.space.delayed(QUEUE), {by_id[job_id]: 0 for job_id in chosen}, xx=True)

    # -- workers -------------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS), want=st.integers(1, 6), promote=st.sampled_from([1, 100]))
    def fetch(self, worker: str, want: int, promote: int) -> None:
        """The fetch script, called with the keys and arguments of ``Worker._queue_fetch`` (no rate limit)."""
        space = self.space
        keys = [*space.lanes_in_poll_order(QUEUE), space.delayed(QUEUE), space.paused(QUEUE)]
        keys += [space.processing(QUEUE, worker), space.rate_limit(QUEUE, 0)]
        pipe = self.r.pipeline(transaction=False)
        self.scripts.queue_call(pipe, self.scripts.fetch, keys, [want, promote, 0, 0])
        (fetched,) = cast("list[list[bytes]]", pipe.execute())
        assert len(fetched) <= want
        if self.paused:
            assert fetched == []
        self.held[worker].extend(fetched)

    def _take(self, data: st.DataObject, pool: list[bytes], label: str) -> bytes:
        index = data.draw(st.integers(0, len(pool) - 1), label=label)
        return pool.pop(index)

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        """A handler succeeded: the worker's ack is one LREM of the exact fetched bytes."""
        worker = data.draw(st.sampled_from([w for w in WORKERS if self.held[w]]), label="worker")
        raw = self._take(data, self.held[worker], "job")
        removed = self.r.lrem(self.space.processing(QUEUE, worker), 1, raw)  # type: ignore[arg-type]
        assert removed == 1
        self.completed.add(decode_job(raw).id)

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data(), dead=st.booleans())
    def fail(self, data: st.DataObject, dead: bool) -> None:
        """A handler raised: the settle script, built by ``failure`` as the worker builds it."""
        worker = data.draw(st.sampled_from([w for w in WORKERS if self.held[w]]), label="worker")
        raw = self._take(data, self.held[worker], "job")
        assert self._settle_failure(worker, raw, dead) == 1

    def _settle_failure(self, worker: str, raw: bytes, dead: bool) -> int:
        """The ops ``failure`` builds for a failed attempt, run in one MULTI; returns the settle script's reply."""
        item = Fetched(QUEUE, raw, decode_job(raw))
        max_attempts = 1 if dead else 5
        ops, _ = failure(self.space, item, worker, 1, max_attempts, "boom", int(time.time() * 1000))
        pipe = self.r.pipeline(transaction=True)
        for op in ops:
            op.queue_on(pipe, self.scripts)
        (settled,) = pipe.execute()
        return int(settled)

    @precondition(lambda self: any(self.stale.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["ack", "retry", "dead"]))
    def zombie_finish(self, data: st.DataObject, outcome: str) -> None:
        """A worker declared dead finishes a job it held: its ack or settle must find the job gone.

        It still finds it when the job was fetched again into the same worker's list with the same bytes.
        """
        worker = data.draw(st.sampled_from([w for w in WORKERS if self.stale[w]]), label="worker")
        raw = self._take(data, self.stale[worker], "job")
        refetched = raw in self.held[worker]
        if outcome == "ack":
            removed = self.r.lrem(self.space.processing(QUEUE, worker), 1, raw)  # type: ignore[arg-type]
        else:
            removed = self._settle_failure(worker, raw, outcome == "dead")
        assert removed == int(refetched)
        if refetched:
            self.held[worker].remove(raw)
            if outcome == "ack":
                self.completed.add(decode_job(raw).id)

    @rule(worker=st.sampled_from(WORKERS))
    def recover(self, worker: str) -> None:
        """The worker is declared dead: its in-flight jobs go back to their lanes."""
        moved = requeue_processing(self.r, self.scripts, self.space, QUEUE, worker)
        assert moved == len(self.held[worker])
        self.stale[worker].extend(self.held[worker])
        self.held[worker] = []

    # -- operator ------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        combo=st.sampled_from(COMBOS),
        by_ids=st.booleans(),
        name=st.sampled_from([None, *NAMES]),
        chunk=st.integers(1, 5),
        dry_run=st.booleans(),
    )
    def bulk_op(
        self,
        data: st.DataObject,
        combo: tuple[BulkAction, JobState],
        by_ids: bool,
        name: str | None,
        chunk: int,
        dry_run: bool,
    ) -> None:
        action, state = combo
        ids = self._known_ids(data) if by_ids else None
        job_filter = JobFilter(name=name) if name else None
        before = self._in_state(self._where(), state)
        expected = [
            job_id
            for job_id in before
            if (ids is None or job_id in ids) and (name is None or self.names[job_id] == name)
        ]
        call = {"keyspace": self.space, "job_filter": job_filter, "ids": ids, "chunk": chunk, "dry_run": dry_run}
        if not self.pushed:
            with pytest.raises(NotFoundError):
                bulk(self.r, QUEUE, state, action, actor=ACTOR, **call)  # type: ignore[arg-type]
            return
        result = bulk(self.r, QUEUE, state, action, actor=ACTOR, **call)  # type: ignore[arg-type]
        assert result.matched == len(expected)
        assert result.moved == (0 if dry_run else len(expected))
        if dry_run:
            return
        after = self._where()
        base = dict(after[f"lane:{self.space.queue(QUEUE)}"])
        if action is BulkAction.DELETE:
            self.deleted.update(expected)
            return
        for job_id in expected:
            assert job_id in base, f"{action.value} of {job_id} did not land in the base lane"
            if action is BulkAction.RETRY:
                job = decode_job(base[job_id])
                assert job.attempts in (0, None) and job.error is None and job.failed_at_ms is None

    @rule(data=st.data(), kind=st.sampled_from(["retry", "delete", "promote"]))
    def single_op(self, data: st.DataObject, kind: str) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.pushed) + ["never-pushed"]), label="job_id")
        where = self._where()
        states = {
            "retry": (JobState.FAILED, JobState.DELAYED),
            "delete": (JobState.FAILED, JobState.DELAYED, JobState.WAITING),
            "promote": (JobState.DELAYED,),
        }[kind]
        expected = next((s for s in states if job_id in self._in_state(where, s)), None)
        operation = {"retry": retry_job, "delete": delete_job, "promote": promote_job}[kind]
        if expected is None:
            with pytest.raises(NotFoundError):
                operation(self.r, QUEUE, job_id, actor=ACTOR, keyspace=self.space)
            return
        assert operation(self.r, QUEUE, job_id, actor=ACTOR, keyspace=self.space) is expected
        if kind == "delete":
            self.deleted.add(job_id)

    @rule()
    def clear(self) -> None:
        before = self._in_state(self._where(), JobState.FAILED)
        assert clear_failed(self.r, QUEUE, actor=ACTOR, keyspace=self.space) == len(before)
        self.deleted.update(before)

    @rule(paused=st.sampled_from([True, False, False]))  # resumes outnumber pauses, so workers get jobs
    def switch(self, paused: bool) -> None:
        if paused:
            pause(self.r, QUEUE, actor=ACTOR, keyspace=self.space)
        else:
            resume(self.r, QUEUE, actor=ACTOR, keyspace=self.space)
        self.paused = paused

    # -- the law -------------------------------------------------------------------------------

    @invariant()
    def every_job_is_in_exactly_one_place(self) -> None:
        if not self.r.exists(self.sentinel):
            pytest.fail("this run's keys vanished: another client flushed the test database (not a job loss)")
        where = self._where()
        seen = Counter(job_id for rows in where.values() for job_id, _ in rows)
        duplicated = {job_id: n for job_id, n in seen.items() if n > 1}
        assert not duplicated, f"duplicated jobs: {duplicated} in {where}"
        assert not self.completed & self.deleted
        alive = self.pushed - self.completed - self.deleted
        assert set(seen) == alive, f"lost: {sorted(alive - set(seen))}, resurrected: {sorted(set(seen) - alive)}"
        for worker in WORKERS:
            in_redis = Counter(raw for _, raw in where[f"processing:{worker}"])
            assert in_redis == Counter(self.held[worker]), f"processing list of {worker} differs from what it holds"


@pytest.mark.timeout(120)
def test_no_job_is_lost_or_duplicated(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class OnTestServer(ConservationMachine):
        pass

    # Pages of a few entries, so that operations by id walk several pages of the short lists here.
    monkeypatch.setattr(_pick, "PAGE", 3)
    monkeypatch.setattr(_pick, "FIRST_PAGE", 2)

    OnTestServer.redis_url = redis_url
    run_state_machine_as_test(
        OnTestServer,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
