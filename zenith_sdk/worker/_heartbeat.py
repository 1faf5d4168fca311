"""The worker's heartbeat (the shape the console reads) and its periodic dead-worker recovery."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import psutil
import redis

from zenith_protocol import (
    KeySpace,
    WorkerHeartbeat,
    WorkerMemory,
    WorkerStatus,
    encode_heartbeat,
    encode_worker_queues,
)
from zenith_sdk._background import BackgroundLoop
from zenith_sdk.events import EventEmitter
from zenith_sdk.worker._options import WorkerOptions
from zenith_sdk.worker._recovery import recover_dead_workers

__all__ = ["BusyState", "HeartbeatLoop"]

logger = logging.getLogger(__name__)

_MB = 1024 * 1024


@dataclass(frozen=True)
class BusyState:
    """What the worker is doing right now, for the busy fields of the heartbeat."""

    status: WorkerStatus
    current_job_id: str | None = None
    job_name: str | None = None


class HeartbeatLoop:
    """Refreshes the heartbeat key, the worker index and the queue list; recovers dead workers."""

    def __init__(
        self,
        client: redis.Redis,
        space: KeySpace,
        options: WorkerOptions,
        state: Callable[[], BusyState],
        events: EventEmitter | None,
    ) -> None:
        self.client = client
        self.space = space
        self.options = options
        self.state = state
        self.events = events
        self.started_at = time.time()
        self._process = psutil.Process()
        self._hostname = socket.gethostname()
        self._last_recovery = 0.0
        self._loop = BackgroundLoop(f"zenith-heartbeat-{options.worker_id}", options.heartbeat_interval_s, self.tick)

    def heartbeat(self) -> WorkerHeartbeat:
        """The heartbeat as of now."""
        busy = self.state()
        try:
            load = list(os.getloadavg())
        except OSError:  # pragma: no cover - platforms without a load average
            load = []
        return WorkerHeartbeat(
            id=self.options.worker_id,
            hostname=self._hostname,
            pid=os.getpid(),
            uptime_s=round(time.time() - self.started_at, 3),
            memory=WorkerMemory(rss=f"{self._process.memory_info().rss // _MB}MB"),
            queues=list(self.options.queues),
            concurrency=self.options.concurrency,
            timestamp=datetime.now(timezone.utc),
            load_avg=[round(value, 2) for value in load],
            status=busy.status,
            current_job_id=busy.current_job_id,
            job_name=busy.job_name,
            language="python",
            cores=os.cpu_count(),
        )

    def beat(self) -> None:
        """Write the heartbeat, index entry and queue list in one round trip."""
        options = self.options
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.space.worker(options.worker_id), encode_heartbeat(self.heartbeat()), ex=options.heartbeat_ttl_s)
        pipe.zadd(self.space.worker_index(), {options.worker_id: int(time.time() * 1000)})
        pipe.hset(
            self.space.worker_queues(),
            options.worker_id,
            encode_worker_queues(options.queues),
        )
        pipe.execute()

    def tick(self) -> None:
        """One heartbeat, and a recovery pass when one is due."""
        self.beat()
        now = time.monotonic()
        interval_s = self.options.recovery_interval_s
        if now - self._last_recovery >= interval_s:
            self._last_recovery = now
            # The sweep for lists of workers that never registered walks the key space: one
            # worker of the fleet does it per interval, whoever takes the lock first.
            sweep = self.client.set(
                self.space.sweep_lock(), self.options.worker_id, nx=True, ex=max(1, int(interval_s))
            )
            recover_dead_workers(
                self.client,
                keyspace=self.space,
                ttl_s=self.options.heartbeat_ttl_s,
                exclude={self.options.worker_id},
                actor=self.options.worker_id,
                events=self.events,
                sweep=bool(sweep),
            )

    def start(self) -> None:
        """Beat now (raising if Redis is down, so a worker does not start blind), then every interval."""
        self.beat()
        self._loop.start()

    def stop(self, *, deregister: bool = True) -> None:
        """Stop beating and remove this worker's heartbeat, and its index entry and queue list.

        ``deregister=False`` keeps the index entry and queue list: the worker could not put its
        jobs back, and they are how other workers find and recover them once the heartbeat is gone.
        """
        self._loop.stop()
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(self.space.worker(self.options.worker_id))
            if deregister:
                pipe.zrem(self.space.worker_index(), self.options.worker_id)
                pipe.hdel(self.space.worker_queues(), self.options.worker_id)
            pipe.execute()
        except redis.RedisError as exc:
            # The entries expire or are recovered by other workers; nothing is lost.
            logger.warning("could not remove heartbeat of worker=%s: %s", self.options.worker_id, exc)
