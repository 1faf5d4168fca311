"""Retention deletes exactly what is older than its age, per state and per queue, in batches, and nothing else."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from archive.helpers import rows
from zenith_archive import connect, migrate
from zenith_archive.retention import (
    RetentionPolicy,
    cleanup,
    maintenance_config,
    record_cleanup_run,
)
from zenith_archive.schema import (
    job_events,
    job_fields,
    jobs,
    legacy_job_archive,
    legacy_system_logs,
    logs,
    operator_actions,
)
from zenith_protocol import KeySpace, MaintenanceConfig, encode_maintenance_config

DAY = 86_400_000
NOW = 1_800_000_000_000


def _ago(days: float) -> int:
    return NOW - int(days * DAY)


def _when(days: float) -> datetime:
    return datetime.fromtimestamp(_ago(days) / 1000, tz=timezone.utc).replace(tzinfo=None)


# (queue, job id, state, days since its last event)
JOBS = [
    ("emails", "c-old", "completed", 5),
    ("emails", "c-edge", "completed", 3),  # exactly the age: kept (only older rows go)
    ("emails", "c-new", "completed", 2),
    ("emails", "d-old", "dead", 40),
    ("emails", "d-new", "dead", 20),
    ("emails", "x-old", "deleted", 40),
    ("emails", "w-old", "waiting", 400),  # a state without an age is kept
    ("billing", "c-old", "completed", 5),  # billing keeps completed jobs 10 days
    ("billing", "c-older", "completed", 11),
    ("billing", "d-old", "dead", 40),  # billing keeps dead jobs for ever
    *[("bulk", f"b{n}", "completed", 4 + n / 100) for n in range(7)],
]
POLICY = RetentionPolicy(
    default_days=30,
    days={"completed": 3, "events": 50, "logs": 7},
    queues={"billing": {"completed": 10, "dead": None}},
)


def _fill(engine: Engine) -> dict[tuple[str, str], int]:
    ids: dict[tuple[str, str], int] = {}
    with engine.begin() as connection:
        for queue, job_id, state, days in JOBS:
            at = _ago(days)
            created = connection.execute(
                insert(jobs).values(
                    queue=queue,
                    job_id=job_id,
                    state=state,
                    attempts=1,
                    finished_at=at if state in ("completed", "dead", "deleted") else None,
                    updated_at=at,
                    search_text=f"{queue} {job_id}",
                )
            ).inserted_primary_key
            assert created is not None
            pk = created[0]
            ids[(queue, job_id)] = pk
            connection.execute(insert(job_fields).values(job_pk=pk, key="k", value_norm=job_id))
            connection.execute(
                insert(job_events).values(
                    stream_id=f"{at}-{pk}", job_pk=pk, queue=queue, job_id=job_id, type=state, at=at
                )
            )
        connection.execute(  # an old event of a job that is kept (its timeline is trimmed)
            insert(job_events).values(
                stream_id="1-1",
                job_pk=ids[("emails", "w-old")],
                queue="emails",
                job_id="w-old",
                type="enqueued",
                at=_ago(401),
            )
        )
        for number, days in enumerate((500, 300, 1)):
            connection.execute(
                insert(operator_actions).values(stream_id=f"op-{number}", at=_ago(days), action="retry", queue="emails")
            )
        for days in (8, 6):
            connection.execute(insert(logs).values(at=_ago(days), level="info", message=f"{days} days"))
            connection.execute(
                insert(legacy_system_logs).values(level="info", message=f"{days}", worker_id="w", timestamp=_when(days))
            )
        for status, days in (("completed", 4), ("completed", 1), ("failed", 31), ("failed", 29), ("waiting", 31)):
            connection.execute(
                insert(legacy_job_archive).values(
                    job_id=f"{status}-{days}", queue="emails", status=status, payload="{}", archived_at=_when(days)
                )
            )
    return ids


def _left(engine: Engine, table: Any, column: str) -> set[Any]:
    with engine.connect() as connection:
        return set(connection.execute(select(table.c[column])).scalars())


def test_cleanup_deletes_exactly_the_old_rows_per_state_and_queue_in_batches(engine: Engine) -> None:
    ids = _fill(engine)
    calls: list[tuple[str, int]] = []
    report = cleanup(engine, POLICY, now_ms=NOW, batch=3, progress=lambda kind, n: calls.append((kind, n)))
    kept = {(row["queue"], row["job_id"]) for row in rows(engine, jobs)}
    assert kept == {
        ("emails", "c-edge"),
        ("emails", "c-new"),
        ("emails", "d-new"),
        ("emails", "w-old"),
        ("billing", "c-old"),
        ("billing", "d-old"),
    }
    gone = set(ids.values()) - {ids[key] for key in kept}
    assert _left(engine, job_fields, "job_pk") == {ids[key] for key in kept}  # fields went with their jobs
    assert not (_left(engine, job_events, "job_pk") & gone)
    assert "1-1" not in _left(engine, job_events, "stream_id")  # older than the events' 50 days
    assert _left(engine, operator_actions, "stream_id") == {"op-1", "op-2"}  # the audit trail: 365 days
    assert _left(engine, logs, "message") == {"6 days"}
    assert _left(engine, legacy_system_logs, "message") == {"6"}
    assert _left(engine, legacy_job_archive, "job_id") == {"completed-1", "failed-29"}
    assert report.deleted == {
        "completed": 9,  # emails c-old, bulk b0..b6, billing c-older
        "dead": 1,
        "deleted": 1,
        "events": 2,  # both of the waiting job's events, 400 and 401 days old
        "operator": 1,
        "logs": 1,
        "legacy_jobs": 3,
        "legacy_logs": 1,
    }
    # The completed jobs of the queues without their own age went 3 at a time (7 + 1 = 8 rows: 3 batches).
    assert [n for kind, n in calls if kind == "completed"] == [3, 6, 8, 9]
    assert report.total == sum(report.deleted.values())
    again = cleanup(engine, POLICY, now_ms=NOW, batch=3)
    assert again.deleted == {}


def test_a_zero_or_absent_age_keeps_everything(engine: Engine) -> None:
    _fill(engine)
    before = len(rows(engine, jobs))
    report = cleanup(engine, RetentionPolicy(default_days=0), now_ms=NOW)
    assert report.deleted == {}
    assert len(rows(engine, jobs)) == before


def test_sqlite_hands_freed_space_back(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'archive.db'}")
    migrate(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(jobs),
            [
                {
                    "queue": "q",
                    "job_id": f"j{n}",
                    "state": "completed",
                    "attempts": 1,
                    "finished_at": _ago(100),
                    "payload": "x" * 2000,
                    "search_text": "y" * 2000,
                }
                for n in range(2000)
            ],
        )
    report = cleanup(engine, RetentionPolicy(default_days=30), now_ms=NOW)
    assert report.deleted == {"completed": 2000}
    assert report.size_before is not None and report.size_after is not None
    assert report.size_after < report.size_before / 2
    engine.dispose()


def test_policy_checks_its_kinds_and_maps_the_maintenance_settings() -> None:
    with pytest.raises(ValueError, match="unknown retention kinds"):
        RetentionPolicy(days={"finished": 3})
    with pytest.raises(ValueError, match="unknown retention kinds"):
        RetentionPolicy(queues={"q": {"logs": 3}})
    policy = RetentionPolicy.from_maintenance(MaintenanceConfig(retention_days=14))
    assert (policy.age_days("completed"), policy.age_days("dead"), policy.age_days("logs")) == (14, 14, 14)
    assert policy.age_days("operator") == 365 and policy.age_days("waiting") is None
    assert RetentionPolicy(default_days=400).age_days("operator") == 400


def test_maintenance_settings_are_read_and_last_run_recorded(r: redis.Redis, keyspace: KeySpace) -> None:
    assert maintenance_config(r, keyspace) == MaintenanceConfig()
    r.set(
        keyspace.maintenance_config(), encode_maintenance_config(MaintenanceConfig(auto_cleanup=True, retention_days=9))
    )
    assert record_cleanup_run(r, keyspace, at_ms=NOW)
    config = maintenance_config(r, keyspace)
    assert (config.auto_cleanup, config.retention_days, config.last_run_ms) == (True, 9, NOW)
