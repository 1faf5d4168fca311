"""The queues, the group and the jobs of one worker run (spec 13.5), all derived from one queue name."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from zenith_protocol import LANES_IN_POLL_ORDER, JobPayload, KeySpace, encode_job, validate_queue_name
from zenith_protocol.workers import HEARTBEAT_INTERVAL_S
from zenith_sdk.conformance._app import FAIL, SLEEP, SUCCEED, UNHANDLED

__all__ = [
    "DELAY_MS",
    "HEARTBEAT_JOB_MS",
    "PROBE_MS",
    "TOLERANCE_MS",
    "UNDECODABLE_TEXT",
    "WorkerPlan",
    "worker_queues",
]

PROBE_MS = 3000
"""How long the run's first job sleeps: the registration check looks at it in a processing list meanwhile."""
HEARTBEAT_JOB_MS = HEARTBEAT_INTERVAL_S * 1000 + 3000
"""Longer than the heartbeat refresh (5 s, 6.1), so at least one heartbeat is written while it runs."""
DELAY_MS = 3000
"""How far in the future the delayed jobs are due."""
TOLERANCE_MS = 500
"""Clock tolerance for due times and retry scores (server clock against a worker's)."""
UNDECODABLE_TEXT = '{"id":"conformance-undecodable", this is not JSON}'


def worker_queues(queue: str) -> tuple[str, str, str, str]:
    """The queues a worker under test listens on for ``zenith conformance worker --queue queue``, in order."""
    validate_queue_name(queue)
    names = (f"{queue}.jobs", f"{queue}.lanes", f"{queue}.paused", f"{queue}.dead")
    for name in names:
        validate_queue_name(name)
    return names


@dataclass(frozen=True)
class WorkerPlan:
    """Names and job builders for one run; ``now_ms`` stamps the jobs' ``createdAt``."""

    queue: str
    keyspace: KeySpace

    @property
    def jobs(self) -> str:
        return worker_queues(self.queue)[0]

    @property
    def lanes(self) -> str:
        return worker_queues(self.queue)[1]

    @property
    def paused(self) -> str:
        return worker_queues(self.queue)[2]

    @property
    def dead(self) -> str:
        return worker_queues(self.queue)[3]

    @property
    def queues(self) -> tuple[str, ...]:
        return worker_queues(self.queue)

    @property
    def group(self) -> str:
        return f"{self.queue}.group"

    def job_id(self, case: str) -> str:
        """The id of the job pushed for ``case``."""
        return f"{self.queue}-{case}"

    def job(self, case: str, name: str, now_ms: int, properties: dict[str, Any] | None = None, **options: Any) -> bytes:
        """A new canonical job for ``case`` (options are :meth:`JobPayload.create` keywords)."""
        options.setdefault("max_attempts", 1)
        payload = JobPayload.create(name, properties, job_id=self.job_id(case), created_at_ms=now_ms, **options)
        return encode_job(payload).encode()

    def failing(self, case: str, now_ms: int, **options: Any) -> bytes:
        """A ``conformance.fail`` job whose message names ``case``."""
        return self.job(case, FAIL, now_ms, {"message": self.message(case)}, **options)

    def message(self, case: str) -> str:
        """The failure message of ``case``."""
        return f"conformance failure {case}"

    def probe(self, now_ms: int) -> bytes:
        return self.job("first", SLEEP, now_ms, {"ms": PROBE_MS})

    def heartbeat_job(self, now_ms: int) -> bytes:
        return self.job("busy", SLEEP, now_ms, {"ms": HEARTBEAT_JOB_MS})

    def succeeding(self, case: str, now_ms: int, **options: Any) -> bytes:
        return self.job(case, SUCCEED, now_ms, **options)

    def unhandled(self, now_ms: int) -> bytes:
        return self.job("unhandled", UNHANDLED, now_ms, max_attempts=3)

    def legacy(self, now_ms: int) -> bytes:
        """A ``conformance.fail`` job as the Node producer writes it: push order, ``delaySeconds`` 0, no version."""
        data = json.dumps({"job": FAIL, "properties": {"message": self.message("legacy")}}, separators=(",", ":"))
        fields = {"id": self.job_id("legacy"), "type": "json", "data": data, "createdAt": now_ms}
        fields.update({"delaySeconds": 0, "attempts": 0, "maxAttempts": 1})
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def wrapper_id(raw: bytes) -> str:
        """The id of the job that wraps an undecodable entry (4.7)."""
        return f"invalid-{hashlib.sha1(raw).hexdigest()[:16]}"

    def owned_keys(self) -> list[str]:
        """Every key of the run but the processing lists (found with SCAN) and the group set (shared)."""
        space = self.keyspace
        keys: list[str] = []
        for queue in self.queues:
            for lane in LANES_IN_POLL_ORDER:
                keys += [space.lane(queue, lane), space.delayed(queue, lane), space.paused(queue, lane)]
            keys.append(space.failed(queue))
        keys.append(space.group_pending(self.jobs, self.group))
        return keys

    def processing_patterns(self) -> list[str]:
        """SCAN patterns of the processing lists of the run's queues."""
        return [self.keyspace.processing(queue, "*") for queue in self.queues]
