"""Producers for the producer conformance tests: ours, fed the manifest, and one written from the spec alone."""

from __future__ import annotations

import json

import redis

from zenith_protocol import JobPayload, KeySpace, encode_job, lane_for
from zenith_sdk import JobSpec, Producer
from zenith_sdk.conformance import ManifestJob, producer_manifest

__all__ = ["ForeignProducer", "push_with_our_producer", "spec_of"]


def spec_of(job: ManifestJob) -> JobSpec:
    """What our producer is asked to push for one manifest job."""
    return JobSpec(
        name=job.name,
        properties=job.properties,
        queue=job.queue,
        delay_s=job.delay_seconds,
        priority=job.priority,
        group_id=job.group_id,
        max_attempts=job.max_attempts,
        retry_after_s=job.retry_after_seconds,
        retry_multiplier=job.retry_multiplier,
        job_type=job.type,
    )


def push_with_our_producer(r: redis.Redis, space: KeySpace, queue: str) -> None:
    producer = Producer(r, keyspace=space)
    for job in producer_manifest(queue):
        producer.push_many([spec_of(job)])


class ForeignProducer:
    """A producer written from the spec with plain redis-py; each knob breaks one thing."""

    def __init__(
        self,
        r: redis.Redis,
        space: KeySpace,
        *,
        canonical: bool = True,
        lanes: bool = True,
        score_skew_ms: int = 0,
        admit_groups: bool = True,
    ) -> None:
        self.r, self.space = r, space
        self.canonical, self.lanes, self.score_skew_ms, self.admit_groups = (
            canonical,
            lanes,
            score_skew_ms,
            admit_groups,
        )

    def push(self, job: ManifestJob, now_ms: int) -> None:
        payload = JobPayload.create(
            job.name,
            job.properties,
            job_type=job.type,
            created_at_ms=now_ms,
            delay_seconds=job.delay_seconds,
            max_attempts=job.max_attempts,
            group_id=job.group_id,
            priority=job.priority,
            retry_after_seconds=job.retry_after_seconds,
            retry_multiplier=job.retry_multiplier,
        )
        raw = encode_job(payload) if self.canonical else json.dumps(json.loads(encode_job(payload)))
        lane = lane_for(job.priority)
        space, queue = self.space, job.queue
        if job.delay_seconds:
            due = now_ms + job.delay_seconds * 1000 + self.score_skew_ms
            self.r.zadd(space.delayed(queue, lane), {raw: due})
        elif job.group_id and self.admit_groups:
            if self.r.sadd(space.group_active(queue), job.group_id):
                self.r.lpush(space.lane(queue, lane), raw)
            else:
                self.r.rpush(space.group_pending(queue, job.group_id), raw)
        else:
            self.r.lpush(space.lane(queue, lane if self.lanes else None), raw)
        self.r.sadd(space.queue_index(), queue)
