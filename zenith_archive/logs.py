"""Live log lines (PROTOCOL 6.3) into ``zenith_logs`` and the Node console's ``flux_system_logs``.

Lifecycle events carry no log lines, so the log archiver subscribes to the logs channel, as the
Node console's archive did. Pub/sub keeps nothing for a subscriber that is away: lines published
while no log archiver runs are not archived (the capped history list holds only the latest 100,
with no ids to resume from). Job history itself never depends on this: it comes from the events
stream (:mod:`zenith_archive.archiver`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import redis
from redis.client import PubSub
from sqlalchemy.engine import Engine

from zenith_archive._ingest import clean
from zenith_archive.schema import legacy_system_logs, logs
from zenith_protocol import KeySpace, LogEntry, ProtocolError, decode_log

__all__ = ["LogArchiver"]

logger = logging.getLogger(__name__)

_FLUSH_S = 1.0
_RETRY_MAX_S = 30.0


def _naive_utc(moment: datetime) -> datetime:
    """``moment`` in UTC without a zone, as the Node console's DATETIME columns hold it."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


class LogArchiver:
    """Writes the log lines published on the logs channel to the archive, in batches, until :meth:`stop`.

    Args:
        client: a redis-py client.
        engine: the archive (migrated).
        keyspace: key names (default: the wire layout).
        batch: lines per transaction at most; a batch is also written after a second.
        legacy_tables: also write ``flux_system_logs``, which the Node console shows.
    """

    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        *,
        keyspace: KeySpace | None = None,
        batch: int = 500,
        legacy_tables: bool = True,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.client = client
        self.engine = engine
        self.channel = (keyspace or KeySpace()).logs_channel()
        self.batch = batch
        self.legacy_tables = legacy_tables
        self.subscribed = threading.Event()
        """Set once the subscription is in place (lines published from then on are archived)."""
        self._stop = threading.Event()

    def write(self, entries: Sequence[LogEntry]) -> int:
        """Write ``entries`` in one transaction; returns how many."""
        if not entries:
            return 0
        rows: list[dict[str, Any]] = []
        for entry in entries:
            level = entry.level.value if isinstance(entry.level, Enum) else str(entry.level)
            rows.append(
                {
                    "at": int(entry.timestamp.timestamp() * 1000),
                    "level": clean(level, 16) or "",
                    "message": clean(entry.message) or "",
                    "worker_id": clean(entry.worker_id, 255),
                    "queue": clean(entry.queue, 255),
                    "job_id": clean(entry.job_id, 255),
                }
            )
        with self.engine.begin() as connection:
            connection.execute(logs.insert(), rows)
            if self.legacy_tables:
                legacy = [
                    {
                        "level": row["level"][:20],
                        "message": row["message"],
                        "worker_id": (row["worker_id"] or "")[:128],
                        "queue": row["queue"][:128] if row["queue"] else None,
                        "timestamp": _naive_utc(entry.timestamp),
                    }
                    for row, entry in zip(rows, entries)
                ]
                connection.execute(legacy_system_logs.insert(), legacy)
        return len(rows)

    def _listen(self) -> None:
        pending: list[LogEntry] = []
        flush_at = time.monotonic() + _FLUSH_S
        pubsub: PubSub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
        with pubsub:
            pubsub.subscribe(self.channel)
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message is None and not self.subscribed.is_set() and pubsub.subscribed:
                    self.subscribed.set()
                if message is not None and message.get("type") == "message":
                    try:
                        pending.append(decode_log(message["data"]))
                    except ProtocolError as exc:
                        logger.debug("log line on %s does not decode: %s", self.channel, exc)
                if len(pending) >= self.batch or (pending and time.monotonic() >= flush_at):
                    self.write(pending)
                    pending = []
                if time.monotonic() >= flush_at:
                    flush_at = time.monotonic() + _FLUSH_S
            self.write(pending)

    def run(self) -> None:
        """Archive log lines until :meth:`stop`; outages are logged and retried (lines published meanwhile are lost)."""
        self._stop.clear()
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # the log archiver outlives outages of Redis and of the database
                logger.warning("log archiver: %s; retrying in %.1f s", exc, delay)
                self.subscribed.clear()
                self._stop.wait(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    def stop(self) -> None:
        """Ask :meth:`run` to write what it holds and return."""
        self._stop.set()
