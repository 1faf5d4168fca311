"""The archiver outlives outages, refused rows and odd payloads, and speaks RESP2 and RESP3 alike."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis
from patience import HANG_S
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

import zenith_archive.archiver as archiver_module
from archive.helpers import archive, archived_ids, drain, emit, job, rows, stream_ids
from zenith_archive.archiver import Archiver, require_migrated
from zenith_archive.schema import job_events
from zenith_archive.status import status
from zenith_protocol import ConfigError, EventType, JobPayload, KeySpace
from zenith_sdk.events import job_event


def _jobs(count: int, queue: str = "q") -> list[Any]:
    payloads = [JobPayload.create("Work", {"n": n}, job_id=f"w{n}") for n in range(count)]
    return [job_event(EventType.ENQUEUED, queue, payload, include_payload=True) for payload in payloads]


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_an_archive_not_migrated_is_refused_with_what_to_do(
    r: redis.Redis, keyspace: KeySpace, blank_engine: Engine
) -> None:
    with pytest.raises(ConfigError, match="zenith archive migrate"):
        require_migrated(blank_engine)
    with pytest.raises(ConfigError, match="has no archive tables yet"):
        Archiver(r, blank_engine, keyspace=keyspace).run()


def test_a_redis_outage_is_retried_until_stopped(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    archiver = Archiver(redis.Redis(port=1, socket_connect_timeout=0.2), engine)
    thread = threading.Thread(target=archiver.run)
    thread.start()
    try:
        _wait_for(lambda: any("archiver:" in rec.getMessage() for rec in caplog.records), "no retry was logged")
    finally:
        archiver.stop()
        thread.join(HANG_S)
    assert not thread.is_alive()


def test_a_deleted_stream_gets_its_group_back(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_jobs(2))
    archiver = Archiver(r, engine, keyspace=keyspace)
    drain(archiver)
    r.delete(keyspace.events())  # the group goes with it
    emit(r, keyspace, *_jobs(3, queue="other"))
    thread = threading.Thread(target=archiver.run)
    thread.start()
    try:
        _wait_for(lambda: len(archived_ids(engine)) == 5, "the archiver did not recreate its group")
    finally:
        archiver.stop()
        thread.join(HANG_S)


def test_a_lost_connection_is_retried_within_the_batch(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = archiver_module.write_batch  # type: ignore[attr-defined]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(archiver_module, "write_batch", flaky)
    emit(r, keyspace, *_jobs(3))
    archive(r, engine, keyspace)
    assert len(calls) >= 2 and len(archived_ids(engine)) == 3


def test_an_entry_the_database_refuses_is_kept_as_undecodable(
    r: redis.Redis, keyspace: KeySpace, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = archiver_module.write_batch  # type: ignore[attr-defined]
    emit(r, keyspace, *_jobs(3))
    poison = stream_ids(r, keyspace)[1]

    def refusing(connection: Any, entries: Any, **kwargs: Any) -> Any:
        if any(entry.stream_id == poison and entry.event is not None for entry in entries):
            raise IntegrityError("INSERT", {}, Exception("value refused"))
        return real(connection, entries, **kwargs)

    monkeypatch.setattr(archiver_module, "write_batch", refusing)
    archive(r, engine, keyspace)
    events = {e["stream_id"]: e for e in rows(engine, job_events)}
    assert sorted(events) == sorted(stream_ids(r, keyspace))
    assert events[poison]["type"] == "undecodable" and "value refused" in events[poison]["error"]
    assert r.xpending(keyspace.events(), "archive")["pending"] == 0


def test_resp3_replies_work_too(redis_url: str, keyspace: KeySpace, engine: Engine) -> None:
    client = redis.Redis.from_url(redis_url, protocol=3)
    try:
        emit(client, keyspace, *_jobs(4))
        dead = Archiver(client, engine, keyspace=keyspace, consumer="dead", batch=2)
        assert len(dead._read(None)) == 2
        archive(client, engine, keyspace, consumer="alive", claim_idle_ms=0)
        found = status(client, engine, keyspace=keyspace)
    finally:
        client.close()
    assert len(archived_ids(engine)) == 4
    assert (found.lag, found.pending, found.rows["zenith_jobs"]) == (0, 0, 4)


def test_odd_payloads_and_text_are_stored_safely(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    stream = keyspace.events()

    def raw(job_id: str, payload: Any, **extra: Any) -> None:
        event = {"type": "enqueued", "queue": "odd", "timestamp": 1, "jobId": job_id, "payload": payload, **extra}
        r.xadd(stream, {"event": json.dumps(event)})

    raw("not-json", "{oops")
    raw("array", "[1, 2]")
    raw("data-not-json", json.dumps({"id": "data-not-json", "type": "json", "data": "{oops"}))
    raw("data-array", json.dumps({"id": "data-array", "type": "json", "data": "[1]"}), jobName="Named")
    raw("nul\x00id", json.dumps({"id": "x", "data": json.dumps({"job": "Lone \ud800 surrogate", "properties": 5})}))
    r.xadd(stream, {"event": json.dumps({"type": "custom_type", "queue": "odd", "timestamp": 2, "jobId": "array"})})
    archive(r, engine, keyspace)
    assert job(engine, "not-json", "odd")["payload"] is None
    assert job(engine, "array", "odd")["payload"] is None
    assert json.loads(job(engine, "data-not-json", "odd")["payload"])["data"] == "{oops"
    assert job(engine, "data-array", "odd")["name"] == "Named"
    odd = job(engine, "nul\ufffdid", "odd")
    assert odd["name"] == "Lone ? surrogate"
    custom = [e for e in rows(engine, job_events) if e["type"] == "custom_type"]
    assert [e["job_pk"] for e in custom] == [job(engine, "array", "odd")["id"]]  # linked, state untouched
    assert job(engine, "array", "odd")["state"] == "waiting"


def test_pending_entries_trimmed_before_they_were_written_are_recorded_as_lost(
    r: redis.Redis, keyspace: KeySpace, engine: Engine
) -> None:
    emit(r, keyspace, *_jobs(3))
    archiver = Archiver(r, engine, keyspace=keyspace, consumer="one")
    assert len(archiver._read(None)) == 3  # read, then the process died before writing them
    emit(r, keyspace, *_jobs(1, queue="later"))
    r.xtrim(keyspace.events(), maxlen=1, approximate=False)
    restarted = Archiver(r, engine, keyspace=keyspace, consumer="one")
    drain(restarted)
    events = rows(engine, job_events)
    assert [e["type"] for e in events] == ["undecodable"] * 3 + ["enqueued"]
    assert all("trimmed" in e["error"] for e in events[:3])
    assert r.xpending(keyspace.events(), "archive")["pending"] == 0


def test_job_ids_mysql_pads_alike_do_not_stop_the_archive(r: redis.Redis, keyspace: KeySpace, engine: Engine) -> None:
    emit(r, keyspace, *_jobs(1), job_event(EventType.STARTED, "q", "w0 ", worker_id="w", attempt=1))
    archive(r, engine, keyspace)
    assert len(archived_ids(engine)) == 2
    assert job(engine, "w0", "q")["state"] == "waiting"  # on MariaDB "w0 " finds this row, which stays as it is
