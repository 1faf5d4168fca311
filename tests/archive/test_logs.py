"""Live log lines published on the logs channel land in zenith_logs and the Node console's flux_system_logs."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
import redis
from patience import HANG_S
from sqlalchemy.engine import Engine

from archive.helpers import rows
from zenith_archive.logs import LogArchiver
from zenith_archive.schema import legacy_system_logs, logs
from zenith_protocol import KeySpace, LogEntry, LogLevel, encode_log

WHEN = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def _line(number: int) -> str:
    entry = LogEntry(
        level=LogLevel.ERROR,
        message=f"line {number}\x00",
        worker_id="w1",
        queue="q",
        job_id=f"j{number}",
        timestamp=WHEN,
    )
    return encode_log(entry)


def test_published_lines_are_archived_in_batches(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    archiver = LogArchiver(r, engine, keyspace=keyspace, batch=2)
    thread = threading.Thread(target=archiver.run)
    thread.start()
    try:
        assert archiver.subscribed.wait(HANG_S)
        for number in range(5):
            r.publish(keyspace.logs_channel(), _line(number))
        r.publish(keyspace.logs_channel(), "not a log line")
        deadline = time.monotonic() + HANG_S
        while len(rows(engine, logs)) < 5:
            assert time.monotonic() < deadline, "the log lines were not archived"
            time.sleep(0.05)
    finally:
        archiver.stop()
        thread.join(HANG_S)
    found = rows(engine, logs)
    assert [(x["level"], x["message"], x["job_id"]) for x in found] == [
        ("error", f"line {n}\ufffd", f"j{n}") for n in range(5)
    ]
    assert {x["at"] for x in found} == {int(WHEN.timestamp() * 1000)}
    legacy = rows(engine, legacy_system_logs)
    assert [(x["level"], x["worker_id"], x["queue"], x["timestamp"]) for x in legacy] == [
        ("error", "w1", "q", WHEN.replace(tzinfo=None))
    ] * 5


def test_an_unreachable_redis_is_retried_until_stopped(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2)
    archiver = LogArchiver(client, engine, legacy_tables=False)
    thread = threading.Thread(target=archiver.run)
    thread.start()
    deadline = time.monotonic() + HANG_S
    while not any("log archiver:" in record.getMessage() for record in caplog.records):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    archiver.stop()
    thread.join(HANG_S)
    assert not thread.is_alive()
    with pytest.raises(ValueError, match="batch must be at least 1"):
        LogArchiver(client, engine, batch=0)
