"""The conformance jobs (spec 13.5): what a worker under test runs during ``zenith conformance worker``."""

from __future__ import annotations

import time

from zenith_sdk.worker import App, JobContext

__all__ = ["FAIL", "SLEEP", "SUCCEED", "UNHANDLED", "app"]

SUCCEED = "conformance.succeed"
FAIL = "conformance.fail"
SLEEP = "conformance.sleep"
UNHANDLED = "conformance.unhandled"
"""Pushed by the run; a worker under test has no handler for it."""


class ConformanceJobError(Exception):
    """The failure ``conformance.fail`` is asked for."""


def _succeed(job: JobContext) -> None:
    """Return at once."""


def _fail(job: JobContext) -> None:
    """Fail the attempt with the message the job carries."""
    raise ConformanceJobError(str(job.properties.get("message", "conformance failure")))


def _sleep(job: JobContext) -> None:
    """Wait ``ms`` milliseconds."""
    ms = job.properties.get("ms", 0)
    time.sleep(max(0.0, float(ms)) / 1000 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else 0.0)


app = App({SUCCEED: _succeed, FAIL: _fail, SLEEP: _sleep})
"""``zenith worker zenith_sdk.conformance:app --queues $(zenith conformance queues --queue Q)``."""
