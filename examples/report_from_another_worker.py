"""Report lifecycle events from a job system that is not Zenith's (Celery, RQ, home-grown).

Each call is one Redis round trip: the live log line, the throughput counter and the durable
event stream that the SQL archive reads.
"""

from __future__ import annotations

import sys
import time

from zenith_sdk import EventEmitter


def run_one(events: EventEmitter, job_id: str) -> None:
    events.started("reports", job_id, job_name="build-report", worker_id="celery@host-1", attempt=1)
    started = time.perf_counter()
    try:
        time.sleep(0.01)  # the real work
    except Exception as exc:
        events.failed("reports", job_id, job_name="build-report", error=str(exc), attempt=1)
        raise
    events.completed("reports", job_id, job_name="build-report", duration_ms=(time.perf_counter() - started) * 1000)


if __name__ == "__main__":
    run_one(EventEmitter(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"), "report-2026-11-29")
