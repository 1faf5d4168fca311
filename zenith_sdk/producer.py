"""Push jobs onto the queue layout the Node consumer reads, one or many per round trip.

A job of a FIFO group is admitted at push, as the Node producer does: it becomes fetchable at
once when its group is free, else it waits in the group's pending list until the group's
earlier jobs are done.

A job an idle worker's wait on the base list cannot see (one pushed onto another lane, or a
delayed one) is announced on the queue's wake channel in the same round trip (PROTOCOL 4.6).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zenith_protocol import EventType, JobPayload, JobType, encode_job, lane_for, validate_queue_name
from zenith_sdk._wire import storable
from zenith_sdk.events import EventWriter, job_event
from zenith_sdk.scripts import ENQUEUE, scripts_for

__all__ = ["DEFAULT_QUEUE", "JobSpec", "Producer"]

DEFAULT_QUEUE = "default"


class JobSpec(BaseModel):
    """One job to push. ``priority`` ``critical``/``high``/``low`` selects a lane; other values are kept as data.

    Jobs with the same ``group_id`` run one at a time, in push order; such a job cannot also be
    delayed (it runs when the earlier jobs of its group are done).
    """

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

    @model_validator(mode="after")
    def _grouped_jobs_are_not_delayed(self) -> JobSpec:
        if self.group_id is not None and not self.group_id:
            raise ValueError("group_id must not be empty; leave it out for a job without a group")
        if self.group_id and self.delay_s:
            raise ValueError(
                "a job of a group runs when the earlier jobs of its group are done, so it cannot also be delayed; "
                "drop delay_s or group_id"
            )
        return self


class Producer(EventWriter):
    """Enqueues jobs; emits an ``enqueued`` event for each in the same round trip.

    Takes a client or URL, ``keyspace=`` and ``events=`` as :class:`~zenith_sdk.events.EventWriter` does.
    """

    def push(
        self,
        name: str,
        properties: dict[str, Any] | None = None,
        *,
        queue: str = DEFAULT_QUEUE,
        delay_s: float | None = None,
        priority: str | int | None = None,
        group_id: str | None = None,
        max_attempts: int | None = None,
        retry_after_s: float | None = None,
        retry_multiplier: float | None = None,
        job_id: str | None = None,
        job_type: JobType | str = JobType.JSON,
    ) -> str:
        """Push one job; returns its id. The options are those of :class:`JobSpec`."""
        spec = JobSpec(
            name=name,
            properties=properties or {},
            queue=queue,
            delay_s=delay_s,
            priority=priority,
            group_id=group_id,
            max_attempts=max_attempts,
            retry_after_s=retry_after_s,
            retry_multiplier=retry_multiplier,
            job_id=job_id,
            job_type=job_type,
        )
        return self.push_many([spec])[0]

    def push_many(self, specs: Iterable[JobSpec]) -> list[str]:
        """Push many jobs in one round trip; returns their ids in order."""
        now_ms = int(time.time() * 1000)
        jobs = [(spec, _payload(spec, now_ms)) for spec in specs]
        if not jobs:
            return []
        pipe = scripts_for(self.client).pipeline(transaction=False)
        queues = set()
        unseen = set()  # queues with jobs that an idle worker's wait on the base list does not see
        for spec, job in jobs:
            validate_queue_name(spec.queue)
            queues.add(spec.queue)
            raw = encode_job(job)
            lane = lane_for(spec.priority)
            if spec.delay_s or lane is not None:
                unseen.add(spec.queue)
            if spec.delay_s:
                pipe.commands.zadd(self.keyspace.delayed(spec.queue, lane), {raw: now_ms + int(spec.delay_s * 1000)})
            elif spec.group_id:
                group = storable(spec.group_id)
                keys = [self.keyspace.lane(spec.queue, lane), *self._group_keys(spec.queue, group)]
                pipe.call(ENQUEUE, keys, [raw, group])
            else:
                pipe.commands.lpush(self.keyspace.lane(spec.queue, lane), raw)
        pipe.commands.sadd(self.keyspace.queue_index(), *queues)
        for queue in sorted(unseen):
            pipe.commands.publish(self.keyspace.wake_channel(queue), "1")
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
        pipe.execute()
        return [job.id for _, job in jobs]

    def _group_keys(self, queue: str, group_id: str) -> list[str]:
        return [self.keyspace.group_active(queue), self.keyspace.group_pending(queue, group_id)]


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
