"""A fixed stream holding every kind of entry the archiver meets, and a dump of everything it writes.

:func:`fill` writes the entries with fixed stream ids (so that two runs archive the very same
stream); :func:`dump` reads every table the archiver writes, its full-text index included, as
JSON-ready values, leaving out only the time a consumer's mark was written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from zenith_archive.fts import SQLITE_FTS_TABLE
from zenith_archive.schema import archive_meta, job_events, job_fields, jobs, legacy_job_archive, operator_actions
from zenith_protocol import KeySpace

FIRST_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_SECRET = {"password": "hunter2", "Token": "t0k"}


def _job(job_id: str, data: Any, **extra: Any) -> str:
    return json.dumps({"id": job_id, "name": "SendEmail", "data": data, "attempts": 3, **extra})


def _properties(n: int) -> dict[str, Any]:
    return {
        "email": f" User{n}@Example.com ",
        "amount": 12.50,
        "ratio": 1.0,
        "tiny": 1e-7,
        "tags": ["a", "b", {"deep": [1, None, True]}],
        "address": {"city": "Zürich", "zip": "8001", "geo": {"lat": 47.37}},
        "note": "nul\x00inside and emoji 😀 and 日本語",
        **_SECRET,
    }


def _payloads() -> dict[str, str]:
    node_data = json.dumps({"job": "SendEmail", "properties": _properties(1)}, ensure_ascii=False)
    return {
        "node": _job("j-node", node_data, createdAt=FIRST_MS),  # Node shape: data as JSON text
        "python": _job("j-py", {"class": "Billing", "properties": _properties(2)}),
        "text": _job("j-text", "not json at all"),
        "scalar": json.dumps("a payload that is a string"),
        "broken": '{"id": "j-broken", "data": ',
        "list": json.dumps([1, 2, 3]),
        "wide": _job("j-wide", {"job": "W" * 300, "properties": {f"k{n}": n for n in range(80)}}),
    }


def _events() -> list[dict[str, Any]]:
    p = _payloads()
    long_q = "q" * 300
    return [
        {"type": "enqueued", "queue": "emails", "jobId": "j-node", "payload": p["node"], "enqueuedAt": FIRST_MS},
        {"type": "started", "queue": "emails", "jobId": "j-node", "workerId": "w-1", "attempt": 1},
        {"type": "completed", "queue": "emails", "jobId": "j-node", "workerId": "w-1", "durationMs": 12.5},
        {"type": "enqueued", "queue": "billing", "jobId": "j-py", "payload": p["python"], "delayMs": 500},
        {"type": "started", "queue": "billing", "jobId": "j-py", "workerId": "w-\u00e9", "attempt": 1},
        {"type": "failed", "queue": "billing", "jobId": "j-py", "error": "boom\x00x \ud800 lone", "durationMs": 1.0},
        {"type": "retried", "queue": "billing", "jobId": "j-py", "delayMs": 1000},
        {"type": "started", "queue": "billing", "jobId": "j-py", "workerId": "w-2", "attempt": 2},
        {"type": "dead_lettered", "queue": "billing", "jobId": "j-py", "error": "gave up 😀", "attempt": 2},
        {"type": "retried", "queue": "billing", "jobId": "j-py", "actor": "alice"},
        {"type": "completed", "queue": "billing", "jobId": "j-py", "durationMs": 1e-7, "payload": p["python"]},
        {"type": "enqueued", "queue": "emails", "jobId": "j-text", "payload": p["text"], "jobName": "Named"},
        {"type": "deleted", "queue": "emails", "jobId": "j-text", "actor": "bob"},
        {"type": "enqueued", "queue": "emails", "jobId": "j-scalar", "payload": p["scalar"]},
        {"type": "enqueued", "queue": "emails", "jobId": "j-broken", "payload": p["broken"], "delayMs": 10},
        {"type": "promoted", "queue": "emails", "jobId": "j-broken", "actor": "carol"},
        {"type": "enqueued", "queue": "emails", "jobId": "j-list", "payload": p["list"]},
        {"type": "enqueued", "queue": long_q, "jobId": "j-wide " + "i" * 300, "payload": p["wide"]},
        {"type": "completed", "queue": long_q, "jobId": "j-wide " + "i" * 300, "workerId": "w" * 300},
        {"type": "recovered", "queue": "emails", "jobId": "j-lost", "workerId": "w-dead", "count": 1},
        {"type": "operator", "queue": "emails", "action": "pause", "actor": "bob", "count": 3},
        {"type": "operator", "queue": "emails", "action": "something_new", "actor": "bob", "count": 2**40},
        {"type": "alert", "queue": "emails", "ruleId": "r1", "subject": "queue:emails", "toState": "firing"},
        {"type": "future_kind", "queue": "emails", "jobId": "j-node", "extra": {"secret": "s", "ok": 1}},
        {"type": "started", "queue": "emails", "jobId": "j-node", "custom": "x", **_SECRET},
        {"type": "completed", "queue": "emails", "jobId": "j-node", "attempt": 2**40, "protocolVersion": 1},
        {"type": "failed", "queue": "billing", "jobId": "j-late", "error": "e", "timestamp": FIRST_MS - 5},
    ]


def _undecodable() -> list[Any]:
    return [
        {"event": "{{not json"},
        {"event": "[1, 2]"},
        {"event": json.dumps({"type": "started", "jobId": "j-noq", "password": "p"})},
        {"event": json.dumps({"type": "started", "queue": "emails", "jobId": "j-v", "protocolVersion": 999})},
        {"event": json.dumps({"type": "started", "queue": "emails", "timestamp": "yesterday"})},
        {"other": "field", "password": "p"},
        {"event": b"\xff\xfe not utf-8"},
        {"event": '{"type": "started", "queue": "e\\u0000q", "jobId": "nul\\u0000id", "timestamp": 1}'},
    ]


def fill(r: redis.Redis, space: KeySpace) -> list[str]:
    """Append the fixed entries to the events stream; returns their ids."""
    ids: list[str] = []
    for n, event in enumerate(_events()):
        stamped = {"timestamp": FIRST_MS + n * 10, **event}
        ids.append(f"{FIRST_MS + n * 10}-{n % 3}")
        # Some as the Python writer spells them (compact), some with spaces and \u escapes.
        compact = n % 2 and not any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(stamped, ensure_ascii=False))
        body = json.dumps(stamped, separators=(",", ":"), ensure_ascii=False) if compact else json.dumps(stamped)
        r.xadd(space.events(), {"event": body}, id=ids[-1])
    for n, fields in enumerate(_undecodable()):
        ids.append(f"{FIRST_MS + 10_000 + n}-0")
        r.xadd(space.events(), fields, id=ids[-1])
    return ids


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    return value


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    if str(row["key"]).startswith("consumer:"):  # its archivedAt is the time of the run
        mark = json.loads(row["value"])
        mark.pop("archivedAt")
        return {**row, "value": mark}
    return row


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row the archiver writes, per table, in key order, as JSON values."""
    tables = (jobs, job_events, job_fields, operator_actions, legacy_job_archive, archive_meta)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in tables:
            query = select(table).order_by(*table.primary_key.columns)
            found = [{k: _plain(v) for k, v in row.items()} for row in connection.execute(query).mappings()]
            out[table.name] = found
        out[archive_meta.name] = [_meta(row) for row in out[archive_meta.name]]
        dialect = connection.dialect.name
        if dialect == "sqlite":
            for shadow in ("data", "idx", "docsize", "config"):
                name = f"{SQLITE_FTS_TABLE}_{shadow}"
                rows = connection.exec_driver_sql(f"SELECT * FROM {name} ORDER BY 1, 2").mappings()
                out[name] = [{k: _plain(v) for k, v in row.items()} for row in rows]
        elif dialect == "postgresql":
            tsv = connection.execute(text("SELECT id, search_tsv::text AS tsv FROM zenith_jobs ORDER BY id"))
            out["search_tsv"] = [dict(row) for row in tsv.mappings()]
    return out
