"""The job inspector with an archive: the job's archived timeline, in order, with who did what."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis
from console_app import archive_of
from fastapi import FastAPI
from starlette.testclient import TestClient
from wire_data import dead_letter_job

from zenith_protocol import KeySpace
from zenith_sdk.events import EventEmitter


def test_the_job_inspector_shows_the_archived_timeline(
    make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace, tmp_path: Path
) -> None:
    trace = 'Traceback (most recent call last):\n  File "jobs.py", line 9, in send_invoice\nOSError: SMTP timeout'

    def one_failed_job(events: EventEmitter) -> None:
        events.enqueued("emails", "j1", job_name="send-invoice")
        events.started("emails", "j1", worker_id="worker-7", attempt=1)
        events.failed("emails", "j1", error="SMTP timeout", worker_id="worker-7", attempt=1, stack=trace)
        events.dead_lettered("emails", "j1", error="SMTP timeout", attempt=1)

    url = archive_of(tmp_path, r, keyspace, one_failed_job)
    r.lpush(keyspace.failed("emails"), dead_letter_job("j1", failed_at=1_700_000_000_000))

    with TestClient(make_app(archive_url=url)) as client:
        page = client.get("/queues/emails/jobs/j1")
        again = client.get("/queues/emails/jobs/j1")  # the engine is kept and read again

    assert page.status_code == 200 and again.text == page.text
    assert "no archive configured" not in page.text
    text = page.text[page.text.index('<ol class="timeline">') :]
    positions = [text.index(kind) for kind in ("enqueued", "started", "failed", "dead_lettered")]
    assert positions == sorted(positions), "the timeline is in order"
    assert "worker-7" in text and "SMTP timeout" in text
    assert "started</strong> attempt 1 on worker-7" in text
    error = page.text[page.text.index("<h2>Error</h2>") : page.text.index('<ol class="timeline">')]
    assert "<details open data-stack>" in error and "line 9, in send_invoice" in error  # the last failure's trace
    assert text.count("line 9, in send_invoice") == 1  # and under its failed event


def test_a_job_the_archive_has_not_seen_yet_says_so(
    make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace, tmp_path: Path
) -> None:
    url = archive_of(tmp_path, r, keyspace)
    r.lpush(keyspace.failed("emails"), dead_letter_job("j2", failed_at=1_700_000_000_000))

    with TestClient(make_app(archive_url=url)) as client:
        page = client.get("/queues/emails/jobs/j2")

    assert page.status_code == 200 and "no record of this job yet" in page.text
