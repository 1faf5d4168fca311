"""Conservation of jobs: no sequence of control operations, pushes, fetches and settles loses or duplicates one.

A hypothesis state machine drives a real Redis through the same calls the producer, the worker
loop and the control plane make, interleaved arbitrarily, and after every step checks that every
job pushed sits in exactly one place (a waiting lane, a lane's delayed set, the failed list, a
FIFO group's pending list or one worker's processing list) unless it was completed or deleted, in
which case it is nowhere. Jobs of FIFO groups are pushed both by our producer and with the Node
producer's exact commands, and after every step each group has exactly one fetchable or running
job while it is held (none when it is free), so no group is ever stuck.
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
from node_consumer import NodeProducer

from zenith_protocol import LANES_IN_POLL_ORDER, KeySpace, NotFoundError, decode_job, lane_for
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
    purge,
    resume,
    retry_job,
)
from zenith_sdk.producer import JobSpec, Producer
from zenith_sdk.scripts import FETCH, scripts_for
from zenith_sdk.worker._outcomes import Fetched, Op, failure, success
from zenith_sdk.worker._recovery import requeue_processing

QUEUE = "conserve"
WORKERS = ("w1", "w2")
NAMES = ("alpha", "beta")
GROUPS = ("g1", "g2")
LANES = (None, "critical", "high", "low")
DELAYS = (None, None, 10.0, 30.0)  # never due within a run by themselves: only make_due makes them due
ACTOR = "conservation-test"
COMBOS = (
    (BulkAction.RETRY, JobState.FAILED),
    (BulkAction.RETRY, JobState.DELAYED),
    (BulkAction.DELETE, JobState.FAILED),
    (BulkAction.DELETE, JobState.DELAYED),
    (BulkAction.DELETE, JobState.WAITING),
    (BulkAction.DELETE, JobState.GROUPED),
    (BulkAction.PROMOTE, JobState.DELAYED),
)
HOLDING = ("lane:", "delayed:", "processing:")
"""The places of a group's one fetchable or running job."""

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
        self.scripts = scripts_for(self.r)
        self.scripts.load()
        self.producer = Producer(self.r, keyspace=self.space, events=False)
        self.node = NodeProducer(self.r, self.space)
        # Nothing here ever deletes this key: its absence means another process emptied the database.
        self.sentinel = f"{self.tag}:sentinel"
        self.r.set(self.sentinel, "1")
        self.next_id = 0
        self.pushed: set[str] = set()
        self.names: dict[str, str] = {}
        self.groups: dict[str, str] = {}
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
        lists = [(f"lane:{lane}", space.lane(QUEUE, lane)) for lane in LANES_IN_POLL_ORDER]
        lists.append(("failed", space.failed(QUEUE)))
        lists += [(f"processing:{w}", space.processing(QUEUE, w)) for w in WORKERS]
        lists += [(f"grouped:{g}", space.group_pending(QUEUE, g)) for g in GROUPS]
        pipe = self.r.pipeline(transaction=False)
        for _, key in lists:
            pipe.lrange(key, 0, -1)
        for lane in LANES_IN_POLL_ORDER:
            pipe.zrange(space.delayed(QUEUE, lane), 0, -1)
        replies = cast("list[list[bytes]]", pipe.execute())
        names = [name for name, _ in lists] + [f"delayed:{lane}" for lane in LANES_IN_POLL_ORDER]
        return {name: [(decode_job(raw).id, raw) for raw in raws] for name, raws in zip(names, replies, strict=True)}

    @staticmethod
    def _in_state(where: Where, state: JobState) -> list[str]:
        prefix = {JobState.WAITING: "lane:", JobState.DELAYED: "delayed:", JobState.GROUPED: "grouped:"}
        head = prefix.get(state, state.value)
        return [job_id for name, rows in where.items() if name.startswith(head) for job_id, _ in rows]

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

    @rule(
        count=st.integers(1, 3),
        group=st.sampled_from(GROUPS),
        lane=st.sampled_from(LANES),
        by_node=st.booleans(),
        name=st.sampled_from(NAMES),
    )
    def push_grouped(self, count: int, group: str, lane: str | None, by_node: bool, name: str) -> None:
        """Jobs of a FIFO group, pushed by our producer or with the Node producer's exact commands."""
        ids = [f"job-{self.next_id + n}" for n in range(count)]
        self.next_id += count
        if by_node:
            for job_id in ids:
                self.node.push(QUEUE, job_id, name, {"n": 1}, group=group, priority=lane)
        else:
            specs = [JobSpec(name=name, queue=QUEUE, job_id=job_id, priority=lane, group_id=group) for job_id in ids]
            assert self.producer.push_many(specs) == ids
        self.pushed.update(ids)
        self.names.update(dict.fromkeys(ids, name))
        self.groups.update(dict.fromkeys(ids, group))

    @initialize(count=st.integers(2, 6), lane=st.sampled_from(LANES))
    def backlog(self, count: int, lane: str | None) -> None:
        """Every run starts with work waiting, so short runs still reach the workers."""
        self.push(count, False, lane, None, NAMES[0])

    @rule(data=st.data())
    def make_due(self, data: st.DataObject) -> None:
        where = self._where()
        by_id = {
            job_id: (name, raw) for name, rows in where.items() if name.startswith("delayed:") for job_id, raw in rows
        }
        if not by_id:
            return
        # Drawn by id, not by position: equal scores order by bytes, which hold the push time.
        chosen = data.draw(st.lists(st.sampled_from(sorted(by_id)), min_size=1, unique=True), label="due")
        for job_id in chosen:
            name, raw = by_id[job_id]
            lane = name.split(":", 1)[1]
            self.r.zadd(self.space.delayed(QUEUE, None if lane == "None" else lane), {raw: 0}, xx=True)

    # -- workers -------------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS), want=st.integers(1, 6), promote=st.sampled_from([1, 100]))
    def fetch(self, worker: str, want: int, promote: int) -> None:
        """The fetch script, called with the keys and arguments of ``Worker._queue_fetch`` (no rate limit)."""
        space = self.space
        keys = [*space.lanes_in_poll_order(QUEUE), *space.delayed_in_poll_order(QUEUE)]
        keys += [*space.paused_in_poll_order(QUEUE), space.processing(QUEUE, worker), space.rate_limit(QUEUE, 0)]
        reply = cast("list[bytes]", self.scripts.call(FETCH, keys, [want, promote, 0, 0]))
        fetched = reply[1::2] if len(reply) % 2 == 0 else []  # lane, raw, ...; {0, due, watch} for none
        assert len(fetched) <= want
        if self.paused:
            assert fetched == []
        self.held[worker].extend(fetched)

    def _run(self, ops: list[Op]) -> int:
        """The worker's writes for one finished job, in one MULTI; returns the first one's reply."""
        pipe = self.scripts.pipeline(transaction=True)
        for op in ops:
            op.queue_on(pipe)
        return int(pipe.execute()[0])

    def _take(self, data: st.DataObject, pool: list[bytes], label: str) -> bytes:
        index = data.draw(st.integers(0, len(pool) - 1), label=label)
        return pool.pop(index)

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        """A handler succeeded: the ack ``success`` builds (for a grouped job, with its group's release)."""
        worker = data.draw(st.sampled_from([w for w in WORKERS if self.held[w]]), label="worker")
        raw = self._take(data, self.held[worker], "job")
        assert self._ack(worker, raw) == 1
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
        return self._run(ops)

    def _ack(self, worker: str, raw: bytes) -> int:
        ops, _ = success(self.space, Fetched(QUEUE, raw, decode_job(raw)), worker, 1, 1.0)
        return self._run(ops)

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
            removed = self._ack(worker, raw)
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
        moved = requeue_processing(self.r, QUEUE, worker, keyspace=self.space)
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
        if not self._queue_exists():
            with pytest.raises(NotFoundError):
                bulk(self.r, QUEUE, state, action, actor=ACTOR, **call)  # type: ignore[arg-type]
            return
        grouped_before = set(self._in_state(self._where(), JobState.GROUPED))
        result = bulk(self.r, QUEUE, state, action, actor=ACTOR, **call)  # type: ignore[arg-type]
        after = self._where()
        if action is BulkAction.DELETE and not dry_run:
            gone = (
                self.pushed - self.completed - self.deleted - {job_id for rows in after.values() for job_id, _ in rows}
            )
            # By id, a selected job that its group released into the state during the walk goes too.
            released = gone - set(expected)
            assert set(expected) <= gone and (not released or (ids is not None and released <= grouped_before))
            assert released <= set(ids or ()), f"deleted jobs nobody selected: {sorted(released)}"
            assert result.matched == result.moved == len(gone)
            self.deleted.update(gone)
            return
        assert result.matched == len(expected)
        assert result.moved == (0 if dry_run else len(expected))
        if dry_run:
            return
        for job_id in expected:
            place, raw = self._place_of(after, job_id)
            group = self.groups.get(job_id)
            # A retried dead letter of a held group waits behind it; anything else goes to its lane.
            lane = f"lane:{lane_for(decode_job(raw).priority)}"
            assert place == lane or (group and place == f"grouped:{group}"), f"{job_id} of {action.value} is in {place}"
            if action is BulkAction.RETRY:
                job = decode_job(raw)
                assert job.attempts in (0, None) and job.error is None and job.failed_at_ms is None

    def _queue_exists(self) -> bool:
        """What the control plane checks: the queue is in the index or has a lane, delayed set or failed list."""
        space = self.space
        keys = [*space.lanes_in_poll_order(QUEUE), *space.delayed_in_poll_order(QUEUE), space.failed(QUEUE)]
        return bool(self.r.sismember(space.queue_index(), QUEUE) or self.r.exists(*keys))

    @staticmethod
    def _place_of(where: Where, job_id: str) -> tuple[str, bytes]:
        return next((name, raw) for name, rows in where.items() for found, raw in rows if found == job_id)

    @rule(data=st.data(), kind=st.sampled_from(["retry", "delete", "promote"]))
    def single_op(self, data: st.DataObject, kind: str) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.pushed) + ["never-pushed"]), label="job_id")
        where = self._where()
        states = {
            "retry": (JobState.FAILED, JobState.DELAYED),
            "delete": (JobState.FAILED, JobState.DELAYED, JobState.WAITING, JobState.GROUPED),
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

    @precondition(lambda self: self.next_id % 5 == 0)  # now and then: it empties the queue
    @rule()
    def purge_queue(self) -> None:
        where = self._where()
        alive = [job_id for rows in where.values() for job_id, _ in rows]
        purge(self.r, QUEUE, confirm=QUEUE, actor=ACTOR, keyspace=self.space)
        # Running jobs are deleted too: their worker's ack finds nothing, as after a recovery.
        for worker in WORKERS:
            self.stale[worker].extend(self.held[worker])
            self.held[worker] = []
        self.deleted.update(alive)
        self.paused = False  # the flags are keys of the queue too
        assert self.r.scard(self.space.group_active(QUEUE)) == 0

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

    @invariant()
    def every_held_group_has_one_job_that_can_run(self) -> None:
        where = self._where()
        held = {member.decode() for member in cast("set[bytes]", self.r.smembers(self.space.group_active(QUEUE)))}
        for group in GROUPS:
            holding = [
                job_id
                for name, rows in where.items()
                if name.startswith(HOLDING)
                for job_id, _ in rows
                if self.groups.get(job_id) == group
            ]
            pending = where[f"grouped:{group}"]
            assert len(holding) <= 1, f"group {group} has several jobs that can run: {holding}"
            assert (group in held) == bool(holding), f"group {group}: held={group in held}, jobs that can run {holding}"
            assert not pending or holding, f"group {group} is stuck: {len(pending)} jobs wait and none can run"


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
