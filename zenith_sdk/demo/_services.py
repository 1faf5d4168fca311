"""Everything the demo runs besides the console: worker, producer trickle, schedules, pulse, alerts, archiver."""

from __future__ import annotations

import importlib.util
import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path

import redis

from zenith_protocol import AlertRule, KeySpace
from zenith_sdk._background import BackgroundLoop
from zenith_sdk.alerts import AlertService, add_rule
from zenith_sdk.connection import RedisSettings
from zenith_sdk.demo._jobs import DEMO_QUEUES, DemoFeed, demo_app
from zenith_sdk.producer import Producer
from zenith_sdk.pulse import Pulse
from zenith_sdk.schedules import Scheduler
from zenith_sdk.worker import Worker, WorkerOptions

__all__ = ["Demo", "archive_available"]

logger = logging.getLogger(__name__)

ACTOR = "zenith-demo"
_FAILING_RULE = AlertRule(
    id="demo-crm-failures",
    name="CRM sync keeps failing",
    type="failure_ratio",
    threshold=20,
    queue="integrations",
    window_minutes=5,
    severity="critical",
    description="The demo's flaky CRM sync fails about half its attempts, so this rule fires.",
)
_SCHEDULES = (
    ("demo-hourly-digest", "* * * * *", "reports", "build-report", {"kind": "digest"}),
    ("demo-crm-resync", "*/2 * * * *", "integrations", "sync-crm", {"contact": "all"}),
)
_STOP_JOIN_S = 10.0


def archive_available() -> bool:
    """True when SQLAlchemy (the ``archive`` extra) is installed, so the demo can archive to SQLite."""
    return importlib.util.find_spec("sqlalchemy") is not None


class Demo:
    """The demo's moving parts on the Redis at ``redis_url``, started by :meth:`start`, all stopped by :meth:`stop`.

    Args:
        redis_url: where they all run.
        keyspace: key names (a prefix of the demo's own on a shared Redis).
        directory: where the SQLite archive goes (the demo's temporary folder).
        feed_interval_s: seconds between two rounds of pushed jobs.
        archive: archive to SQLite (needs SQLAlchemy: see :func:`archive_available`).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        keyspace: KeySpace,
        directory: Path,
        feed_interval_s: float = 1.0,
        archive: bool = True,
    ) -> None:
        self.redis_url = redis_url
        self.keyspace = keyspace
        self.archive_url = f"sqlite:///{directory / 'archive.db'}" if archive else None
        self._feed_interval_s = feed_interval_s
        self._stop = threading.Event()
        self._client: redis.Redis | None = None
        self._stoppers: list[Callable[[], None]] = []
        self._threads: list[threading.Thread] = []
        self._closers: list[Callable[[], None]] = []

    def start(self) -> None:
        """Seed schedules and an alert rule, push a first burst of jobs, and start every part."""
        client = RedisSettings.from_url(self.redis_url).client(client_name="zenith-demo")
        self._client = client
        space, rng = self.keyspace, random.Random()
        scheduler = Scheduler(client, keyspace=space)
        for schedule_id, cron, queue, job_name, properties in _SCHEDULES:
            scheduler.register(schedule_id, cron, queue, job_name, properties, actor=ACTOR)
        try:
            add_rule(client, _FAILING_RULE, keyspace=space)
        except ValueError:  # the rule is there from an earlier demo on this Redis
            pass
        feed = DemoFeed(Producer(client, keyspace=space), rng)
        feed.burst(20)
        self._start_worker(rng)
        self._spawn("zenith-demo-scheduler", lambda: scheduler.run(interval_s=1.0, stop=self._stop))
        alerts = AlertService(client, keyspace=space, interval_s=5.0)
        self._spawn("zenith-demo-alerts", lambda: alerts.run(stop=self._stop))
        self._start_archiver(client)
        pulse = Pulse("zenith-demo", client, keyspace=space, interval_s=5.0, framework="zenith demo")
        pulse.start()
        self._stoppers.append(pulse.stop)
        loop = BackgroundLoop("zenith-demo-feed", self._feed_interval_s, feed.tick, stop=self._stop)
        loop.start()
        self._stoppers.append(loop.stop)

    def _start_worker(self, rng: random.Random) -> None:
        options = WorkerOptions(queues=DEMO_QUEUES, concurrency=6, shutdown_timeout_s=5.0)
        worker = Worker(demo_app(self._stop, rng=rng), self.redis_url, keyspace=self.keyspace, options=options)
        worker.start()
        self._stoppers.append(lambda: worker.stop(timeout_s=_STOP_JOIN_S))

    def _start_archiver(self, client: redis.Redis) -> None:
        if self.archive_url is None:
            return
        from zenith_archive import Archiver, connect, migrate

        engine = connect(self.archive_url)
        migrate(engine)
        archiver = Archiver(client, engine, keyspace=self.keyspace, consumer="zenith-demo")
        self._spawn("zenith-demo-archiver", archiver.run)
        self._stoppers.append(archiver.stop)
        self._closers.append(engine.dispose)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop every part (running jobs are interrupted and put back), then close the client. Idempotent."""
        self._stop.set()
        for stop in self._stoppers:
            try:
                stop()
            except Exception:  # one part failing to stop must not leave the others running
                logger.exception("demo: a part did not stop cleanly")
        self._stoppers.clear()
        for thread in self._threads:
            thread.join(_STOP_JOIN_S)
        self._threads.clear()
        for close in self._closers:
            close()
        self._closers.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
