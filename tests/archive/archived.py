"""Rows written straight into an archive, for the tests of what reads it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from zenith_archive._ingest import search_text
from zenith_archive.fields import flatten_properties
from zenith_archive.schema import job_events, job_fields, jobs

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000


def add_job(
    connection: Connection,
    job_id: str,
    *,
    queue: str = "mail",
    name: str | None = "SendEmail",
    state: str = "completed",
    updated_at: int | None = NOW,
    error: str | None = None,
    properties: dict[str, Any] | None = None,
) -> int:
    """Archive one job (its row, full-text source and fields); returns its row id."""
    payload = json.dumps({"id": job_id, "data": {"job": name, "properties": properties or {}}})
    text = search_text(name, error, payload)
    row = {"queue": queue, "job_id": job_id, "name": name, "state": state, "attempts": 1, "error": error}
    row.update(updated_at=updated_at, enqueued_at=updated_at, payload=payload, search_text=text)
    key = connection.execute(insert(jobs).values(**row)).inserted_primary_key
    assert key is not None
    pk = int(key[0])
    fields = flatten_properties(properties or {})
    if fields:
        connection.execute(
            insert(job_fields), [{"job_pk": pk, "key": key, "value_norm": value} for key, value in fields]
        )
    return pk


def add_event(
    connection: Connection,
    pk: int | None,
    stream_id: str,
    kind: str,
    *,
    queue: str = "mail",
    job_id: str | None = None,
    actor: str | None = None,
    attempt: int | None = None,
) -> None:
    """Archive one lifecycle event of the job with row id ``pk``."""
    at = int(stream_id.partition("-")[0])
    data = json.dumps({"type": kind, "queue": queue, "jobId": job_id, "actor": actor})
    connection.execute(
        insert(job_events).values(
            stream_id=stream_id, job_pk=pk, queue=queue, job_id=job_id, type=kind, at=at, attempt=attempt,
            actor=actor, data=data,
        )
    )  # fmt: skip
