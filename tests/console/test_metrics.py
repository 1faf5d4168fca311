"""``/metrics`` on a real Redis: counters the real worker keeps, the snapshot gauges, Redis down."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import redis
from console_app import settings_for
from fastapi import FastAPI
from metrics_scrape import Samples, run_jobs, scrape, seed_everything_else, value
from starlette.testclient import TestClient
from worker_fixtures import StartWorker

from zenith_protocol import KeySpace
from zenith_protocol.counters import DURATION_BUCKETS_S, QueueCounters, bucket_field
from zenith_sdk.console import create_app
from zenith_sdk.demo._redis import free_port
from zenith_sdk.events import EventEmitter
from zenith_sdk.producer import Producer


def _counted(samples: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {key: v for key, v in samples.items() if key[0].startswith(("zenith_jobs_", "zenith_job_duration"))}


def test_counters_follow_what_the_worker_ran(
    console: TestClient, r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    run_jobs(r, keyspace, start_worker, producer)

    samples = scrape(console)

    assert value(samples, "zenith_redis_up") == 1
    assert value(samples, "zenith_jobs_completed_total", queue="emails") == 5
    assert value(samples, "zenith_jobs_failed_total", queue="emails") == 3
    assert value(samples, "zenith_jobs_processed_total", queue="emails") == 8
    assert value(samples, "zenith_jobs_dead_lettered_total", queue="emails") == 3
    assert value(samples, "zenith_job_duration_seconds_count", queue="emails") == 8
    assert value(samples, "zenith_job_duration_seconds_sum", queue="emails") >= 0
    assert value(samples, "zenith_queue_jobs", queue="emails", state="failed") == 3


def test_histogram_buckets_are_cumulative_and_end_at_the_count(
    console: TestClient, r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    run_jobs(r, keyspace, start_worker, producer)
    emitter = EventEmitter(r, keyspace=keyspace)
    for duration_ms in (3, 40, 700, 12_000, 90_000):  # one per region of the buckets, one past the last bound
        emitter.completed("emails", f"x-{duration_ms}", duration_ms=duration_ms, job_name="ok")

    samples = scrape(console)

    bounds = [*(f"{bound:g}" for bound in DURATION_BUCKETS_S), "+Inf"]
    counts = [value(samples, "zenith_job_duration_seconds_bucket", queue="emails", le=le) for le in bounds]
    assert counts == sorted(counts)
    assert counts[-1] == value(samples, "zenith_job_duration_seconds_count", queue="emails") == 13
    assert counts[-1] - counts[-2] == 1  # 90 s is over every bound
    assert counts[bounds.index("0.005")] >= 1 and counts[bounds.index("30")] - counts[bounds.index("10")] == 1
    assert value(samples, "zenith_job_duration_seconds_sum", queue="emails") >= 102.743
    assert value(samples, "zenith_jobs_completed_total", queue="emails") == 10


def test_trimming_the_failed_list_never_lowers_the_counters(
    console: TestClient, r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    run_jobs(r, keyspace, start_worker, producer)
    before = _counted(scrape(console))

    r.ltrim(keyspace.failed("emails"), 0, 0)  # what the cap does to old dead letters
    after_trim = scrape(console)
    r.delete(keyspace.failed("emails"))  # what clearing the failed list does
    after_clear = scrape(console)

    assert value(after_trim, "zenith_queue_jobs", queue="emails", state="failed") == 1
    assert value(after_clear, "zenith_queue_jobs", queue="emails", state="failed") == 0
    assert _counted(after_trim) == _counted(after_clear) == before
    assert value(after_clear, "zenith_jobs_dead_lettered_total", queue="emails") == 3


@pytest.fixture
def jobs_run(r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer) -> None:
    """The jobs of :func:`run_jobs`, run by the real worker."""
    run_jobs(r, keyspace, start_worker, producer)


@pytest.mark.usefixtures("jobs_run")
def test_two_consoles_on_one_redis_report_the_same_counters(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(title="a")) as first, TestClient(make_app(title="b")) as second:
        one, two = _counted(scrape(first)), _counted(scrape(second))

    assert one == two and value(one, "zenith_jobs_processed_total", queue="emails") == 8


def test_a_scrape_with_redis_down_answers_with_redis_up_0(keyspace: KeySpace) -> None:
    app = create_app(settings_for(keyspace, f"redis://127.0.0.1:{free_port()}/0"))

    with TestClient(app) as client:
        samples = scrape(client)

    assert samples == {("zenith_redis_up", ()): 0}


def test_the_snapshot_gauges(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    seed_everything_else(r, keyspace)

    samples = scrape(console)

    assert value(samples, "zenith_queue_oldest_waiting_age_seconds", queue="emails") >= 90
    assert value(samples, "zenith_queue_jobs", queue="emails", state="waiting") == 2
    assert value(samples, "zenith_node_cpu_system_ratio", service="api", node="web-1-4242") == 0.12
    assert value(samples, "zenith_node_memory_total_bytes", service="api", node="web-1-4242") == 16e9
    assert value(samples, "zenith_node_up", service="billing", node="py-1") == 1
    assert value(samples, "zenith_node_disk_total_bytes", service="billing", node="py-1", path="/") > 0
    assert value(samples, "zenith_schedule_missed_runs", schedule="nightly", queue="emails") >= 3
    assert value(samples, "zenith_schedule_enabled", schedule="nightly", queue="emails") == 1
    assert value(samples, "zenith_alert_state", rule="r1", subject="queue:emails", state="firing") == 1
    assert value(samples, "zenith_alert_state", rule="r1", subject="queue:emails", state="pending") == 0
    assert value(samples, "zenith_notification_channel_consecutive_failures", channel="webhook:ops") == 1
    assert value(samples, "zenith_archive_lag_events") == r.xlen(keyspace.events()) > 0
    assert value(samples, "zenith_events_consumer_lag_events", group="archive") == r.xlen(keyspace.events())


@pytest.mark.usefixtures("jobs_run")
@pytest.mark.parametrize("detailed", [False, True])
def test_labels_per_worker_and_job_name_only_when_asked(detailed: bool, make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(metrics_detailed_labels=detailed)) as client:
        samples = scrape(client)

    names = {name for name, _ in samples}
    detailed_names = {"zenith_job_name_completed_total", "zenith_job_name_failed_total", "zenith_worker_up"}
    assert (detailed_names <= names) is detailed and (detailed_names & names == set()) is not detailed
    if detailed:
        assert value(samples, "zenith_job_name_completed_total", queue="emails", job_name="ok") == 5
        assert value(samples, "zenith_job_name_failed_total", queue="emails", job_name="boom") == 3


@pytest.mark.parametrize(
    ("duration_ms", "field"),
    [(0, "durationLe:0.005"), (5, "durationLe:0.005"), (5.001, "durationLe:0.01"), (60_000, "durationLe:60"),
     (60_001, "durationLe:+Inf"), (math.inf, "durationLe:+Inf")],
)  # fmt: skip
def test_an_attempt_goes_into_the_smallest_bucket_it_does_not_exceed(duration_ms: float, field: str) -> None:
    assert bucket_field(duration_ms) == field


def test_a_counters_hash_reads_tolerantly() -> None:
    counters = QueueCounters.from_hash(
        {
            b"completed": b"4",
            b"failed": b"x",
            b"durationLe:0.01": b"2",
            b"durationLe:1": b"1",
            b"durationSumMs": b"12.5",
            b"completed:send": b"4",
            b"other": b"9",
        }
    )

    assert (counters.completed, counters.failed, counters.dead_lettered) == (4, 0, 0)
    assert counters.duration_count == 3 and counters.duration_sum_ms == 12.5
    assert [count for _, count in counters.buckets] == [0, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3]
    assert counters.by_job == {"send": {"completed": 4}}
