"""``check_worker``: push the jobs of spec 13.5 and watch what the worker under test does with them."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

import redis
from redis.client import PubSub

from zenith_protocol import ConfigError, KeySpace, ProtocolError, decode_worker_queues
from zenith_sdk.conformance._check import Check
from zenith_sdk.conformance._events_check import EventsCheck
from zenith_sdk.conformance._job_checks import DelayedCheck, GroupsCheck, LanesCheck, PausedCheck, RetryCheck
from zenith_sdk.conformance._plan import WorkerPlan
from zenith_sdk.conformance._report import CheckResult, ConformanceReport, Verdict, fields_of
from zenith_sdk.conformance._run import POLL_S, Run, as_bytes
from zenith_sdk.conformance._worker_checks import (
    AckCheck,
    CanonicalCheck,
    DeadLetterCheck,
    HeartbeatCheck,
    LegacyCheck,
    UndecodableCheck,
    UnhandledCheck,
)

__all__ = ["WORKER_CHECKS", "check_worker"]

_CHECKS: tuple[type[Check], ...] = (
    LanesCheck,
    DelayedCheck,
    PausedCheck,
    GroupsCheck,
    RetryCheck,
    DeadLetterCheck,
    UnhandledCheck,
    UndecodableCheck,
    LegacyCheck,
    HeartbeatCheck,
    EventsCheck,
    CanonicalCheck,  # after the others: it judges what they saw the worker write
    AckCheck,
)
REGISTRATION = "registration"
WORKER_CHECKS: tuple[str, ...] = (REGISTRATION, *(check.name for check in _CHECKS))
"""The names of the worker checks, in the order they are reported."""
_SETTLE_S = 5.0

Waiting = Callable[[tuple[str, ...]], object]
Progress = Callable[[int, int], None]


def check_worker(
    client: redis.Redis,
    *,
    queue: str,
    keyspace: KeySpace | None = None,
    wait_s: float = 60.0,
    timeout_s: float = 60.0,
    checks: Collection[str] | None = None,
    on_waiting: Waiting | None = None,
    on_progress: Progress | None = None,
) -> ConformanceReport:
    """Run the worker checks of spec 13.5 on the queues derived from ``queue``; returns one result per check.

    Args:
        client: a redis-py client (it is not closed).
        queue: the name the run's queues derive from (``queue.jobs``, ``queue.lanes``, ...).
        wait_s: how long to wait for a worker to take the first job.
        timeout_s: how long, once it did, every check may take to conclude.
        checks: names from :data:`WORKER_CHECKS` to run (default: all); registration always runs.
        on_waiting: called with the run's queues once the first job waits: start the worker now.
        on_progress: called with (checks concluded, checks) as the run goes.

    Raises:
        ConfigError: the run's keys already hold data, a check name is unknown, or no worker took
            the first job within ``wait_s``.
    """
    plan = WorkerPlan(queue, keyspace or KeySpace())
    chosen = _chosen(checks)
    run = Run(client, plan)
    _refuse_if_in_use(run)
    instances = [check_type(run) for check_type in _CHECKS if check_type.name in chosen]
    run.active = {check.name for check in instances}
    logs = _LogLines(run)
    try:
        run.stream_start = run.stream_end()
        registration = _first_job(run, instances, wait_s, on_waiting)
        _watch(run, instances, logs, timeout_s, on_progress)
        snap = run.snapshot()
        logs.drain()
        run.read_events()
        for check in instances:
            check.conclude(snap)
        return ConformanceReport("worker", queue, (registration, *(check.result() for check in instances)))
    finally:
        logs.close()
        _clean(run)


def _chosen(checks: Collection[str] | None) -> set[str]:
    if checks is None:
        return set(WORKER_CHECKS)
    unknown = sorted(set(checks) - set(WORKER_CHECKS))
    if unknown:
        raise ConfigError(f"unknown check(s) {', '.join(unknown)}; the worker checks are {', '.join(WORKER_CHECKS)}")
    return {REGISTRATION, *checks}


def _refuse_if_in_use(run: Run) -> None:
    """Stop before writing anything when a key of the run already holds data."""
    plan, space = run.plan, run.space
    pipe = run.client.pipeline(transaction=False)
    keys = plan.owned_keys()
    for key in keys:
        pipe.exists(key)
    pipe.sismember(space.group_active(plan.jobs), plan.group)
    *exists, held = pipe.execute()
    used = [key for key, found in zip(keys, exists) if found]
    used += [key for pattern in plan.processing_patterns() for key in run.scan(pattern)]
    if held:
        used.append(f"{space.group_active(plan.jobs)} (group {plan.group})")
    if used:
        raise ConfigError(
            f"{used[0]} already holds data{f' (and {len(used) - 1} more keys)' if len(used) > 1 else ''}: another "
            f"conformance run may be going on, or one was killed; pass another --queue, or delete those keys"
        )


def _first_job(run: Run, instances: list[Check], wait_s: float, on_waiting: Waiting | None) -> CheckResult:
    """Push the setup and the first job, wait for a worker to take it, and judge its registration."""
    plan, space = run.plan, run.space
    verdict = Verdict(REGISTRATION, "Registration before the first fetch", ("6.1", "4.6", "4.12"))
    already = sorted(worker for worker in run.listening_workers() if run.client.exists(space.worker(worker)))
    now_ms = run.server_ms()
    pipe = run.client.pipeline(transaction=True)
    for check in instances:
        check.setup(pipe, now_ms)
    probe = plan.probe(now_ms)
    pipe.lpush(space.queue(plan.jobs), probe)
    pipe.execute()
    if on_waiting is not None:
        on_waiting(plan.queues)
    deadline = time.monotonic() + wait_s
    while _waiting(run, probe):
        if time.monotonic() > deadline:
            raise ConfigError(
                f"no worker took the first job from {plan.jobs} within {wait_s:g} s: start a worker with the "
                f"conformance jobs on the queues {','.join(plan.queues)}"
            )
        time.sleep(POLL_S)
    worker = _holder(run, probe, verdict)
    if already:
        verdict.fail(
            f"not observed: {', '.join(already)} already listened on the run's queues when it began; start the "
            "worker after the run says it is waiting"
        )
    run.started_ms = run.last_read_ms = run.server_ms()
    for check in instances:
        check.start(run.started_ms)
    passed = f"{worker} was registered when it fetched the first job into its processing list"
    return verdict.result(passed)


def _waiting(run: Run, probe: bytes) -> bool:
    return run.client.lpos(run.space.queue(run.plan.jobs), probe) is not None  # type: ignore[arg-type]


def _holder(run: Run, probe: bytes, verdict: Verdict) -> str | None:
    """The worker whose processing list holds the first job; records what its registration lacked."""
    plan, space = run.plan, run.space
    prefix = space.processing(plan.jobs, "")
    for key in run.scan(space.processing(plan.jobs, "*")):
        worker = key[len(prefix) :]
        pipe = run.client.pipeline(transaction=True)
        pipe.lpos(key, probe)  # type: ignore[arg-type]
        pipe.exists(space.worker(worker))
        pipe.zscore(space.worker_index(), worker)
        pipe.hget(space.worker_queues(), worker)
        held, heartbeat, indexed, queues = pipe.execute()
        if held is None:
            continue
        run.workers.add(worker)
        if not heartbeat:
            verdict.fail(f"{worker} fetched the first job while it had no heartbeat key {space.worker(worker)}")
        if indexed is None:
            verdict.fail(f"{worker} fetched the first job before it was in {space.worker_index()}")
        if queues is None or plan.jobs not in _queue_list(queues):
            verdict.fail(f"{worker} fetched the first job before {space.worker_queues()} listed {plan.jobs} for it")
        return worker
    verdict.fail(
        f"the first job left {space.queue(plan.jobs)} but is in no list {space.processing(plan.jobs, '<workerId>')} "
        "(a fetch moves the job into the worker's processing list, 4.6)"
    )
    return None


def _queue_list(raw: bytes | str) -> list[str]:
    try:
        return decode_worker_queues(raw)
    except ProtocolError:
        return []


def _watch(run: Run, instances: list[Check], logs: _LogLines, timeout_s: float, on_progress: Progress | None) -> None:
    """Read Redis until every check has seen what it waits for (or the time is up), then let the worker settle."""
    deadline = time.monotonic() + timeout_s
    while True:
        snap = run.snapshot()
        logs.drain()
        for check in instances:
            if not check.done:
                check.observe(snap)
        finished = sum(check.done for check in instances)
        if on_progress is not None:
            on_progress(finished, len(instances))
        if finished == len(instances) or time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    settle = time.monotonic() + _SETTLE_S
    while time.monotonic() < settle and any(snap.processing.values()):
        time.sleep(POLL_S)
        snap = run.snapshot()


def _clean(run: Run) -> None:
    """Delete every key of the run (one DEL, so a paused job never becomes fetchable) and free its group."""
    plan, space = run.plan, run.space
    keys = plan.owned_keys() + [key for pattern in plan.processing_patterns() for key in run.scan(pattern)]
    pipe = run.client.pipeline(transaction=True)
    pipe.delete(*keys)
    pipe.srem(space.group_active(plan.jobs), plan.group)
    pipe.execute()


class _LogLines:
    """The live log lines about the run's queues, from a subscription to the log channel."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.queues = set(run.plan.queues)
        self.pubsub: PubSub = run.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
        self.pubsub.subscribe(run.space.logs_channel())
        self.pubsub.get_message(timeout=1.0)  # the confirmation: lines published from now on reach us

    def drain(self) -> None:
        while (message := self.pubsub.get_message(timeout=0.0)) is not None:
            line = as_bytes(message["data"])
            if (fields_of(line) or {}).get("queue") in self.queues:
                self.run.log_lines.append(line)

    def close(self) -> None:
        self.pubsub.close()
