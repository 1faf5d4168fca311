"""The Python worker runtime: handlers by job name, reliable fetch, retries, graceful shutdown."""

from zenith_sdk.worker._app import App, Handler, JobContext
from zenith_sdk.worker._options import RateLimit, WorkerOptionFields, WorkerOptions
from zenith_sdk.worker._recovery import recover_dead_workers, requeue_processing, write_staged_events
from zenith_sdk.worker._runtime import Worker

__all__ = [
    "App",
    "Handler",
    "JobContext",
    "RateLimit",
    "Worker",
    "WorkerOptionFields",
    "WorkerOptions",
    "recover_dead_workers",
    "requeue_processing",
    "write_staged_events",
]
