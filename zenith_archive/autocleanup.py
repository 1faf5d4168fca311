"""Automatic retention: a running archiver deletes old rows itself, at most once a day across all archivers.

When the maintenance settings in Redis (PROTOCOL 10.4) say ``autoCleanup: true``, each archiver
looks every ``check_interval_s`` whether the last run (``lastRun``) is a day old. The one that
moves ``lastRun`` to now first (a compare-and-set, :func:`~zenith_archive.retention.claim_cleanup_run`)
runs :func:`~zenith_archive.retention.cleanup` with ``retentionDays`` as the default age, in a
thread of its own so that ingest goes on; the others find the run taken. With ``autoCleanup``
false nothing is deleted. ``lastRun`` moves when the run starts: a run that fails is not
repeated before the next day (the error is logged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from sqlalchemy.engine import Engine

from zenith_archive.retention import DEFAULT_BATCH, CleanupReport, RetentionPolicy, claim_cleanup_run, cleanup
from zenith_protocol import KeySpace, MaintenanceConfig

__all__ = ["DEFAULT_CHECK_INTERVAL_S", "AutoCleanup"]

logger = logging.getLogger(__name__)

DEFAULT_CHECK_INTERVAL_S = 300.0
"""How often a running archiver reads the maintenance settings."""
_DAY_MS = 86_400_000


def _now_ms() -> int:
    return int(time.time() * 1000)


class AutoCleanup:
    """The daily cleanup a running archiver performs when the maintenance settings ask for it.

    Args:
        client: a redis-py client (the maintenance settings live there).
        engine: the archive.
        keyspace: key names (default: the wire layout).
        check_interval_s: at most one look at the settings per this many seconds (:meth:`poll`).
        every_ms: the least time between two runs (a day).
        policy: the policy for the settings read (default: :meth:`RetentionPolicy.from_maintenance`).
        batch: rows per delete transaction.
        clock_ms: the time now, in epoch ms (tests pass their own).
    """

    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        *,
        keyspace: KeySpace | None = None,
        check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
        every_ms: int = _DAY_MS,
        policy: Callable[[MaintenanceConfig], RetentionPolicy] = RetentionPolicy.from_maintenance,
        batch: int = DEFAULT_BATCH,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        if check_interval_s < 0:
            raise ValueError(f"check_interval_s must be 0 or more, got {check_interval_s}")
        self.client = client
        self.engine = engine
        self.keyspace = keyspace or KeySpace()
        self.check_interval_s = check_interval_s
        self.every_ms = every_ms
        self.policy = policy
        self.batch = batch
        self.clock_ms = clock_ms
        self.reports: list[CleanupReport] = []
        """The runs this process performed, oldest first."""
        self._next_check = 0.0
        self._thread: threading.Thread | None = None

    def run_once(self) -> CleanupReport | None:
        """Run the cleanup now if it is on, due, and this process wins the run; None otherwise."""
        now = self.clock_ms()
        config = claim_cleanup_run(self.client, self.keyspace, now_ms=now, every_ms=self.every_ms)
        if config is None:
            return None
        logger.info("automatic cleanup: deleting rows older than %d days", config.retention_days)
        report = cleanup(self.engine, self.policy(config), now_ms=now, batch=self.batch)
        deleted = ", ".join(f"{kind}={count}" for kind, count in report.deleted.items()) or "nothing"
        logger.info("automatic cleanup: deleted %d rows (%s)", report.total, deleted)
        self.reports.append(report)
        return report

    def _background(self) -> None:
        try:
            self.run_once()
        except Exception:  # the archiver goes on; the next day's run tries again
            logger.exception("automatic cleanup failed")

    def poll(self) -> bool:
        """Start :meth:`run_once` in a thread if a look is due and no run is going; returns whether it started."""
        moment = time.monotonic()
        if moment < self._next_check or self.running:
            return False
        self._next_check = moment + self.check_interval_s
        self._thread = threading.Thread(target=self._background, name="zenith-auto-cleanup", daemon=True)
        self._thread.start()
        return True

    @property
    def running(self) -> bool:
        """Whether a look or a run started by :meth:`poll` is still going."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the run :meth:`poll` started (if any) to end."""
        if self._thread is not None:
            self._thread.join(timeout_s)
