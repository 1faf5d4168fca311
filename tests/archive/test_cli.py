"""``zenith archive run|status|cleanup|migrate`` as a person runs them: real processes, one-line errors."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest
import redis
from cli_run import finish, one_line, prefix_options, start, zenith
from patience import HANG_S
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from archive.conftest import url_of
from archive.helpers import archived_ids, emit, rows, stream_ids
from zenith_archive import connect
from zenith_archive.schema import jobs, logs
from zenith_protocol import (
    EventType,
    JobPayload,
    KeySpace,
    LogEntry,
    LogLevel,
    MaintenanceConfig,
    encode_log,
    encode_maintenance_config,
)
from zenith_sdk.cli import main
from zenith_sdk.events import job_event

OLD = 1_500_000_000_000  # 2017: older than any retention


def _emit_jobs(r: redis.Redis, keyspace: KeySpace, count: int, *, at: int | None = None) -> None:
    events = []
    for number in range(count):
        job = JobPayload.create("Send", {"n": number}, job_id=f"c{number}")
        events.append(job_event(EventType.ENQUEUED, "mail", job, include_payload=True, timestamp_ms=at))
        events.append(job_event(EventType.COMPLETED, "mail", job, worker_id="w", attempt=1, timestamp_ms=at))
    emit(r, keyspace, *events)


def test_migrate_then_again(blank_engine: Engine) -> None:
    url = url_of(blank_engine)
    first = zenith("archive", "migrate", "--db", url, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["changed"] is True
    second = zenith("archive", "migrate", "--db", url)
    assert second.returncode == 0 and "already at" in second.stdout and second.stderr == ""


def test_run_archives_until_sigterm_then_status_shows_no_lag(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, redis_url: str
) -> None:
    _emit_jobs(r, keyspace, 30)
    common = ["--db", url_of(engine), "--redis", redis_url, *prefix_options(keyspace)]
    process = start(["archive", "run", *common, "--consumer", "cli", "--batch", "7", "--logs"])
    line = encode_log(
        LogEntry(level=LogLevel.INFO, message="hello", worker_id="w", timestamp=datetime.now(timezone.utc))
    )
    try:
        deadline = time.monotonic() + HANG_S
        while len(archived_ids(engine)) < len(stream_ids(r, keyspace)) or not rows(engine, logs):
            assert process.poll() is None, finish(process).stderr
            assert time.monotonic() < deadline, "zenith archive run did not archive the stream and the log line"
            r.publish(keyspace.logs_channel(), line)  # until the log archiver has subscribed
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "archive: stopped" in result.stderr
    assert {row["state"] for row in rows(engine, jobs)} == {"completed"}
    status = zenith("archive", "status", *common, "--json")
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert (found["lag"], found["pending"], found["rows"]["zenith_jobs"]) == (0, 0, 30)
    assert [c["name"] for c in found["consumers"]] == ["cli"]
    table = zenith("archive", "status", *common)
    assert table.returncode == 0 and "rows in zenith_jobs" in table.stdout and "30" in table.stdout


def test_run_with_processes_shares_the_stream_and_sigterm_stops_every_process(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, redis_url: str
) -> None:
    _emit_jobs(r, keyspace, 200)
    common = ["--db", url_of(engine), "--redis", redis_url, *prefix_options(keyspace)]
    process = start(["archive", "run", *common, "--consumer", "cli", "--batch", "5", "--processes", "2"])
    children: list[psutil.Process] = []

    def both_read() -> bool:  # each child has joined the group: it runs, its signal handlers are set
        try:
            return len(r.xinfo_consumers(keyspace.events(), "archive")) == 2
        except redis.ResponseError:  # no group yet
            return False

    try:
        deadline = time.monotonic() + HANG_S
        while len(archived_ids(engine)) < len(stream_ids(r, keyspace)) or not both_read():
            assert process.poll() is None, finish(process).stderr
            assert time.monotonic() < deadline, "zenith archive run --processes 2 did not archive the stream"
            time.sleep(0.05)
        children = psutil.Process(process.pid).children()
    finally:
        process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "archive: all archivers stopped" in result.stderr
    assert result.stderr.count("archive: stopped") == 2  # each child stopped gracefully
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    found = json.loads(zenith("archive", "status", *common, "--json").stdout)
    assert (found["lag"], found["pending"], found["rows"]["zenith_jobs"]) == (0, 0, 200)
    assert sorted(c["name"] for c in found["consumers"]) == ["cli-0", "cli-1"]
    assert sorted(archived_ids(engine)) == sorted(stream_ids(r, keyspace))  # each entry once


def test_run_creates_a_new_archive_first(r: redis.Redis, keyspace: KeySpace, tmp_path: Path, redis_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    _emit_jobs(r, keyspace, 1)
    process = start(["archive", "run", "--db", url, "--redis", redis_url, *prefix_options(keyspace)])
    engine = connect(url)
    try:
        deadline = time.monotonic() + HANG_S
        while True:
            try:
                if len(archived_ids(engine)) == 2:
                    break
            except OperationalError:  # no tables yet
                pass
            assert process.poll() is None and time.monotonic() < deadline, finish(process).stderr
            time.sleep(0.05)
    finally:
        engine.dispose()
        process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == 0 and "created the archive's tables" in result.stderr, result.stderr


def test_cleanup_uses_the_maintenance_settings_and_records_its_run(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, redis_url: str
) -> None:
    _emit_jobs(r, keyspace, 4, at=OLD)
    common = ["--db", url_of(engine), "--redis", redis_url, *prefix_options(keyspace)]
    assert zenith("archive", "migrate", "--db", url_of(engine)).returncode == 0
    process = start(["archive", "run", *common])
    deadline = time.monotonic() + HANG_S
    while len(archived_ids(engine)) < 8:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert finish(process).returncode == 0
    r.set(keyspace.maintenance_config(), encode_maintenance_config(MaintenanceConfig(retention_days=30)))
    result = zenith("archive", "cleanup", *common, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["deleted"]["completed"] == 4 and report["defaultDays"] == 30
    assert json.loads(r.get(keyspace.maintenance_config()) or b"{}")["lastRun"] > OLD
    again = zenith("archive", "cleanup", *common, "--days", "1", "--queue-age", "mail:completed=0")
    assert again.returncode == 0 and "Deleted 0 rows" in again.stdout, again.stderr


@pytest.mark.parametrize(
    ("argv", "texts"),
    [
        (["archive", "status", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/x"], ("cannot use the archive at",)),
        (["archive", "migrate", "--db", "nonsense"], ("is not a database URL",)),
        (["archive", "run", "--db", "sqlite://", "--states", "done"], ("--states: unknown done",)),
        (["archive", "cleanup", "--db", "sqlite://", "--days", "1", "--queue-age", "x"], ("QUEUE:STATE=DAYS",)),
        (["archive", "status", "--db", "sqlite://", "--redis", "redis://127.0.0.1:1/0"], ("cannot reach Redis",)),
        (["archive", "run", "--db", "sqlite://", "--redis", "redis://127.0.0.1:1/0"], ("cannot reach Redis",)),
    ],
)
def test_failures_are_one_line(argv: list[str], texts: tuple[str, ...]) -> None:
    one_line(zenith(*argv), 2, *texts)


def test_without_the_archive_extra_the_commands_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [module for module in sys.modules if module.split(".")[0] in ("zenith_archive", "sqlalchemy")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # an import of it now fails, as when it is not installed
    assert main(["archive", "migrate", "--db", "sqlite://"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'zenith-sdk[archive]'" in err and len(err.strip().splitlines()) == 1
