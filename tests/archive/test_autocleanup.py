"""Automatic cleanup: off unless set, once a day across all archivers, in the background of a running archiver."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis
from patience import HANG_S
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from archive.helpers import emit, rows
from zenith_archive.archiver import Archiver
from zenith_archive.autocleanup import AutoCleanup
from zenith_archive.retention import maintenance_config
from zenith_archive.schema import job_events, jobs
from zenith_protocol import EventType, KeySpace, MaintenanceConfig, encode_maintenance_config
from zenith_sdk.events import job_event

DAY = 86_400_000
NOW = 1_800_000_000_000


def _finished_job(engine: Engine, job_id: str, finished_ms: int) -> None:
    with engine.begin() as connection:
        row = {"queue": "mail", "job_id": job_id, "state": "completed", "attempts": 1}
        pk = connection.execute(insert(jobs).values(**row, finished_at=finished_ms, updated_at=finished_ms))
        key = pk.inserted_primary_key
        assert key is not None
        event = {"stream_id": f"{finished_ms}-0", "job_pk": key[0], "queue": "mail", "job_id": job_id}
        connection.execute(insert(job_events).values(**event, type="completed", at=finished_ms))


def _job_ids(engine: Engine) -> list[str]:
    return sorted(row["job_id"] for row in rows(engine, jobs))


def _settings(r: redis.Redis, keyspace: KeySpace, **values: object) -> None:
    r.set(keyspace.maintenance_config(), encode_maintenance_config(MaintenanceConfig.model_validate(values)))


def _auto(
    r: redis.Redis, engine: Engine, keyspace: KeySpace, now_ms: int, check_interval_s: float = 300
) -> AutoCleanup:
    return AutoCleanup(r, engine, keyspace=keyspace, clock_ms=lambda: now_ms, check_interval_s=check_interval_s)


def test_nothing_is_deleted_unless_auto_cleanup_is_on(r: redis.Redis, engine: Engine, keyspace: KeySpace) -> None:
    _finished_job(engine, "old", NOW - 100 * DAY)
    assert _auto(r, engine, keyspace, NOW).run_once() is None  # no settings at all
    assert not r.exists(keyspace.maintenance_config())
    _settings(r, keyspace, autoCleanup=False, retentionDays=7)
    assert _auto(r, engine, keyspace, NOW).run_once() is None
    assert _job_ids(engine) == ["old"]
    assert maintenance_config(r, keyspace).last_run_ms is None


def test_one_run_a_day_across_archivers(r: redis.Redis, engine: Engine, keyspace: KeySpace) -> None:
    _finished_job(engine, "old", NOW - 10 * DAY)
    _finished_job(engine, "new", NOW - 2 * DAY)
    _settings(r, keyspace, autoCleanup=True, retentionDays=7, lastRun=NOW - DAY - 1)
    archivers = [_auto(r, engine, keyspace, NOW) for _ in range(4)]
    start = threading.Barrier(len(archivers))
    reports: list[object] = []

    def race(auto: AutoCleanup) -> None:
        start.wait()
        reports.append(auto.run_once())

    threads = [threading.Thread(target=race, args=(auto,)) for auto in archivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_S)
    done = [report for report in reports if report is not None]
    assert len(reports) == 4 and len(done) == 1
    assert _job_ids(engine) == ["new"]
    assert maintenance_config(r, keyspace).last_run_ms == NOW
    _finished_job(engine, "later", NOW - 8 * DAY)
    assert _auto(r, engine, keyspace, NOW + DAY - 1).run_once() is None  # not a day yet
    report = _auto(r, engine, keyspace, NOW + DAY).run_once()
    assert report is not None and report.deleted == {"completed": 1}
    assert _job_ids(engine) == ["new"]
    assert maintenance_config(r, keyspace).last_run_ms == NOW + DAY


def test_a_running_archiver_cleans_up_in_the_background(
    r: redis.Redis, engine: Engine, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time() * 1000)
    _finished_job(engine, "old", now - 10 * DAY)
    _settings(r, keyspace, autoCleanup=True, retentionDays=7)
    auto = _auto(r, engine, keyspace, now, check_interval_s=0)
    archiver = Archiver(r, engine, keyspace=keyspace, auto_cleanup=auto)
    emit(r, keyspace, job_event(EventType.ENQUEUED, "mail", "fresh", timestamp_ms=now))
    caplog.set_level(logging.INFO, logger="zenith_archive.autocleanup")
    runner = threading.Thread(target=archiver.run)
    runner.start()
    try:
        deadline = time.monotonic() + HANG_S
        while (_job_ids(engine) != ["fresh"] or not auto.reports) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        archiver.stop()
        runner.join(HANG_S)
        auto.join(HANG_S)
    assert _job_ids(engine) == ["fresh"]
    assert len(auto.reports) == 1 and auto.reports[0].deleted == {"completed": 1}
    assert maintenance_config(r, keyspace).last_run_ms == now
    assert "automatic cleanup: deleted 1 rows (completed=1)" in caplog.text


def test_an_archiver_can_go_without_it(r: redis.Redis, engine: Engine, keyspace: KeySpace) -> None:
    assert Archiver(r, engine, keyspace=keyspace, auto_cleanup=False).auto_cleanup is None
    assert isinstance(Archiver(r, engine, keyspace=keyspace).auto_cleanup, AutoCleanup)
    with pytest.raises(ValueError, match="check_interval_s"):
        AutoCleanup(r, engine, check_interval_s=-1)
