"""``check_worker`` (spec 13.5) against our worker, a worker written from the spec alone, and broken ones."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from foreign_worker import Breaks, ForeignWorker, one_second_short
from worker_fixtures import StartWorker
from worker_helpers import wait_for

from zenith_protocol import ConfigError, JobPayload, KeySpace
from zenith_sdk.conformance import WORKER_CHECKS, CheckStatus, ConformanceReport, app, check_worker, worker_queues
from zenith_sdk.conformance._app import ConformanceJobError
from zenith_sdk.worker import JobContext

BROKEN = {
    "lanes": Breaks(lane_order=("low", None, "high", "critical")),
    "retry": Breaks(backoff=one_second_short),
    "canonical": Breaks(canonical=False),
    "events": Breaks(events=False),
    "registration": Breaks(register_before_fetch=False),
}


def _statuses(report: ConformanceReport) -> dict[str, str]:
    return {check.name: check.status.value for check in report.checks}


def _run_keys(r: redis.Redis, space: KeySpace, queue: str) -> list[bytes]:
    return list(r.scan_iter(match=f"{space.queue_prefix}{queue}.*", count=1000))


def test_our_worker_passes_every_check_and_the_run_leaves_nothing_behind(
    r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker
) -> None:
    report = check_worker(
        r, queue="conf", keyspace=keyspace, on_waiting=lambda queues: start_worker(app, queues=queues)
    )

    assert [check.name for check in report.checks] == list(WORKER_CHECKS)
    problems = {check.name: check.problems for check in report.checks if check.name != "legacy"}
    assert {name: found for name, found in problems.items() if found} == {}
    assert {name for name, status in _statuses(report).items() if status != "pass"} <= {"legacy"}
    assert _run_keys(r, keyspace, "conf") == []
    assert not r.sismember(keyspace.group_active("conf.jobs"), "conf.group")


def test_our_worker_keeps_a_legacy_job_legacy(r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker) -> None:
    report = check_worker(
        r,
        queue="legacy",
        keyspace=keyspace,
        checks={"legacy"},
        on_waiting=lambda queues: start_worker(app, queues=queues),
    )

    assert _statuses(report) == {"registration": "pass", "legacy": "pass"}


def _against(r: redis.Redis, keyspace: KeySpace, queue: str, breaks: Breaks) -> ConformanceReport:
    workers: list[ForeignWorker] = []

    def start(queues: tuple[str, ...]) -> None:
        workers.append(ForeignWorker(r, keyspace, queues, breaks=breaks))
        workers[-1].start()

    try:
        return check_worker(r, queue=queue, keyspace=keyspace, on_waiting=start)
    finally:
        for worker in workers:
            worker.stop()


def test_each_broken_worker_fails_its_own_check_and_no_other(r: redis.Redis, keyspace: KeySpace) -> None:
    # Every run has its own queues, so they go side by side: together they take one run's time.
    variants = {**BROKEN, "none": Breaks()}
    with ThreadPoolExecutor(max_workers=len(variants)) as pool:
        futures = {name: pool.submit(_against, r, keyspace, f"b-{name}", breaks) for name, breaks in variants.items()}
        reports = {name: future.result() for name, future in futures.items()}

    failed = {name: report.failed() for name, report in reports.items()}
    assert failed == {**{name: [name] for name in BROKEN}, "none": []}, {
        name: [(check.name, check.problems) for check in report.checks if not check.passed]
        for name, report in reports.items()
    }
    assert set(_statuses(reports["none"]).values()) == {"pass"}
    assert "delaySeconds 1, expected 2" in " ".join(reports["retry"].checks[WORKER_CHECKS.index("retry")].problems)


def test_a_worker_already_running_cannot_prove_its_registration(r: redis.Redis, keyspace: KeySpace) -> None:
    worker = ForeignWorker(r, keyspace, worker_queues("early"))
    worker.start()
    wait_for(lambda: r.exists(keyspace.worker(worker.worker_id)), what="the worker to register")
    try:
        report = check_worker(r, queue="early", keyspace=keyspace, checks={"ack"})
    finally:
        worker.stop()

    registration = report.checks[0]
    assert (registration.name, registration.status) == ("registration", CheckStatus.FAIL)
    assert registration.detail.startswith("not observed")
    assert report.status("ack") is CheckStatus.PASS


def test_a_run_refuses_queues_that_hold_data_and_leaves_them_alone(r: redis.Redis, keyspace: KeySpace) -> None:
    key = keyspace.failed("busy.dead")
    r.lpush(key, b"someone else's")

    with pytest.raises(ConfigError, match="already holds data"):
        check_worker(r, queue="busy", keyspace=keyspace, wait_s=0.1)

    assert r.lrange(key, 0, -1) == [b"someone else's"]
    assert r.exists(keyspace.queue("busy.jobs")) == 0


def test_without_a_worker_the_run_stops_and_cleans_up(r: redis.Redis, keyspace: KeySpace) -> None:
    told: list[tuple[str, ...]] = []

    with pytest.raises(ConfigError, match="no worker took the first job"):
        check_worker(r, queue="alone", keyspace=keyspace, wait_s=0.2, on_waiting=told.append)

    assert told == [worker_queues("alone")]
    assert _run_keys(r, keyspace, "alone") == []


def test_unknown_check_names_are_refused(r: redis.Redis, keyspace: KeySpace) -> None:
    with pytest.raises(ConfigError, match="unknown check"):
        check_worker(r, queue="q", keyspace=keyspace, checks={"lanes", "speed"})


def test_the_conformance_app_handles_the_three_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("zenith_sdk.conformance._app.time.sleep", slept.append)

    def context(name: str, properties: dict[str, object]) -> JobContext:
        return JobContext(JobPayload.create(name, properties), "q", 1, "w")

    assert app.names() == ["conformance.fail", "conformance.sleep", "conformance.succeed"]
    handlers = {name: app.get(name) for name in app.names()}
    assert handlers["conformance.succeed"] is not None and handlers["conformance.sleep"] is not None
    assert handlers["conformance.succeed"].fn(context("conformance.succeed", {})) is None
    handlers["conformance.sleep"].fn(context("conformance.sleep", {"ms": 250}))
    assert slept == [0.25]
    fail = handlers["conformance.fail"]
    assert fail is not None
    with pytest.raises(ConformanceJobError, match="^boom 42$"):
        fail.fn(context("conformance.fail", {"message": "boom 42"}))
    assert app.get("conformance.unhandled") is None


def test_worker_queues_derive_from_the_name() -> None:
    assert worker_queues("ci") == ("ci.jobs", "ci.lanes", "ci.paused", "ci.dead")
    with pytest.raises(ConfigError):
        worker_queues("bad:name")
