"""Push jobs onto the queue layout the Node consumer reads, one or many per round trip."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zenith_protocol import PRIORITY_LANES, EventType, JobPayload, JobType, encode_job, validate_queue_name
from zenith_sdk.events import EventWriter, job_event
from zenith_sdk.scripts import NoScriptError

__all__ = ["DEFAULT_QUEUE", "JobSpec", "Producer"]

DEFAULT_QUEUE = "default"


class JobSpec(BaseModel):
    """One job to push. ``priority`` ``critical``/``high``/``low`` selects a lane; other values are kept as data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    properties: dict[str, Any] = Field(default_factory=dict)
    queue: str = DEFAULT_QUEUE
    delay_s: float | None = Field(default=None, ge=0)
    priority: str | int | None = None
    group_id: str | None = None
    max_attempts: int | None = Field(default=None, ge=1)
    retry_after_s: float | None = Field(default=None, ge=0)
    retry_multiplier: float | None = Field(default=None, ge=0)
    job_id: str | None = None
    job_type: JobType = JobType.JSON


class Producer(EventWriter):
    """Enqueues jobs; emits an ``enqueued`` event for each in the same round trip.

    Takes a client or URL, ``keyspace=`` and ``events=`` as :class:`~zenith_sdk.events.EventWriter` does.
    """

    def push(self, name: str, properties: dict[str, Any] | None = None, **options: Any) -> str:
        """Push one job; returns its id. Options are :class:`JobSpec` fields (``queue``, ``delay_s``, ...)."""
        return self.push_many([JobSpec(name=name, properties=properties or {}, **options)])[0]

    def push_many(self, specs: Iterable[JobSpec]) -> list[str]:
        """Push many jobs in one round trip; returns their ids in order."""
        now_ms = int(time.time() * 1000)
        jobs = [(spec, _payload(spec, now_ms)) for spec in specs]
        if not jobs:
            return []
        pipe = self.client.pipeline(transaction=False)
        queues = set()
        for spec, job in jobs:
            validate_queue_name(spec.queue)
            queues.add(spec.queue)
            raw = encode_job(job)
            if spec.delay_s:
                pipe.zadd(self.keyspace.delayed(spec.queue), {raw: now_ms + int(spec.delay_s * 1000)})
            else:
                lane = spec.priority if spec.priority in PRIORITY_LANES else None
                pipe.lpush(self.keyspace.lane(spec.queue, lane if isinstance(lane, str) else None), raw)
        pipe.sadd(self.keyspace.queue_index(), *queues)
        events = []
        if self.events is not None:
            events = [
                job_event(
                    EventType.ENQUEUED,
                    spec.queue,
                    job,
                    include_payload=True,
                    delay_ms=int(spec.delay_s * 1000) if spec.delay_s else None,
                )
                for spec, job in jobs
            ]
            self.events.write(pipe, events)
        results = pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, NoScriptError):
                raise result
        if self.events is not None and isinstance(results[-1], NoScriptError):
            # The jobs are pushed; Redis had lost the events script: record the events again
            # through the call that reloads it.
            self.events.emit(*events)
        return [job.id for _, job in jobs]


def _payload(spec: JobSpec, now_ms: int) -> JobPayload:
    return JobPayload.create(
        spec.name,
        spec.properties,
        job_id=spec.job_id,
        job_type=spec.job_type,
        created_at_ms=now_ms,
        delay_seconds=spec.delay_s or None,
        max_attempts=spec.max_attempts,
        group_id=spec.group_id,
        priority=spec.priority,
        retry_after_seconds=spec.retry_after_s,
        retry_multiplier=spec.retry_multiplier,
    )
