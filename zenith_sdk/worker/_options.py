"""Worker options."""

from __future__ import annotations

import os
import socket
import uuid
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zenith_protocol import validate_queue_name
from zenith_protocol.workers import HEARTBEAT_INTERVAL_S, HEARTBEAT_TTL_S

__all__ = ["RateLimit", "WorkerOptionFields", "WorkerOptions", "new_worker_id"]


def new_worker_id() -> str:
    """``{hostname}-{pid}-{random}``: unique, and readable in the console."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RateLimit(BaseModel):
    """At most ``max_jobs`` fetched per fixed window of ``window_s`` seconds, shared by every worker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_jobs: int = Field(ge=1)
    window_s: int = Field(default=60, ge=1)


class WorkerOptions(BaseModel):
    """How a worker runs.

    Args:
        queues: queues to fetch from, in priority order (each polled critical, high, base, low).
        concurrency: jobs run at once (one thread each).
        prefetch: jobs fetched ahead of free slots (they wait in this worker's processing list);
            ``None`` means four per slot.
        poll_interval_s: longest sleep between fetches when every queue is empty. With ``wake``
            on, a job pushed onto a base list, or announced by this package's producer, ends the
            sleep at once; only jobs another producer pushes onto a priority lane wait for it.
        wake: while idle, wait on each queue's base list and listen for producers' wake signals
            (one connection per queue, plus one), so that new jobs start within milliseconds;
            off, the worker polls, backing off up to ``poll_interval_s``.
        heartbeat_interval_s / heartbeat_ttl_s: heartbeat refresh period and lifetime.
        shutdown_timeout_s: how long a stopping worker waits for running jobs before putting them back.
        default_timeout_s: per-job time limit for handlers that set none (``None``: no limit).
        default_max_attempts: attempts for jobs whose payload sets no ``maxAttempts``.
        events: write lifecycle events (log line, throughput, events stream).
        rate_limits: per-queue rate limits.
        recovery_interval_s: how often this worker looks for dead workers' in-flight jobs.
        promote_batch: most delayed jobs promoted per fetch.
        worker_id: this worker's id (default: hostname-pid-random).
        max_jobs: begin a graceful stop once this many jobs have run (those running then finish;
            ``None``: never); with ``zenith worker --max-jobs-per-child`` a fresh process takes its place.
        max_memory_mb: stop gracefully once this process's resident memory exceeds this many MiB
            (looked at after a job, at most once a second; ``None``: never).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    queues: tuple[str, ...] = ("default",)
    concurrency: int = Field(default=1, ge=1, le=1024)
    prefetch: int | None = Field(default=None, ge=0)
    poll_interval_s: float = Field(default=0.5, gt=0)
    heartbeat_interval_s: float = Field(default=HEARTBEAT_INTERVAL_S, gt=0)
    heartbeat_ttl_s: int = Field(default=HEARTBEAT_TTL_S, ge=1)
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    default_timeout_s: float | None = Field(default=None, gt=0)
    default_max_attempts: int = Field(default=3, ge=1)
    events: bool = True
    wake: bool = True
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    recovery_interval_s: float = Field(default=15.0, gt=0)
    promote_batch: int = Field(default=100, ge=1)
    worker_id: str = Field(default_factory=new_worker_id, min_length=1)
    max_jobs: int | None = Field(default=None, ge=1)
    max_memory_mb: float | None = Field(default=None, gt=0)

    @field_validator("queues")
    @classmethod
    def _valid_queues(cls, queues: tuple[str, ...]) -> tuple[str, ...]:
        if not queues:
            raise ValueError("a worker needs at least one queue")
        for queue in queues:
            validate_queue_name(queue)
        if len(set(queues)) != len(queues):
            raise ValueError(f"queues are listed twice: {list(queues)}")
        return queues

    @model_validator(mode="after")
    def _ttl_outlives_interval(self) -> WorkerOptions:
        if self.heartbeat_ttl_s <= self.heartbeat_interval_s:
            raise ValueError("heartbeat_ttl_s must be longer than heartbeat_interval_s, or the worker looks dead")
        unknown = set(self.rate_limits) - set(self.queues)
        if unknown:
            raise ValueError(f"rate limits name queues this worker does not fetch from: {sorted(unknown)}")
        return self

    @property
    def capacity(self) -> int:
        """Jobs this worker holds at most: running plus prefetched."""
        return self.concurrency + (4 * self.concurrency if self.prefetch is None else self.prefetch)


class WorkerOptionFields(TypedDict, total=False):
    """The fields of :class:`WorkerOptions`, as :class:`~zenith_sdk.worker.Worker` takes them as keywords."""

    queues: tuple[str, ...] | list[str]
    concurrency: int
    prefetch: int | None
    poll_interval_s: float
    heartbeat_interval_s: float
    heartbeat_ttl_s: int
    shutdown_timeout_s: float
    default_timeout_s: float | None
    default_max_attempts: int
    events: bool
    wake: bool
    rate_limits: dict[str, RateLimit]
    recovery_interval_s: float
    promote_batch: int
    worker_id: str
    max_jobs: int | None
    max_memory_mb: float | None
