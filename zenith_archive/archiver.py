"""The archiver: the lifecycle event stream (PROTOCOL 8) into SQL, losing nothing and duplicating nothing.

It reads with a consumer group: first its own pending entries (what it read before a crash and
never acknowledged), then entries that another consumer left pending longer than
``claim_idle_ms`` (``XAUTOCLAIM``: that archiver died), then new ones. Each batch is written in
one transaction whose inserts are idempotent, and acknowledged (``XACK``) only after the commit.
Killed at any moment and restarted, it re-reads what it had not acknowledged and skips what it
had already written. Several archivers in one group share the stream.

An entry that does not decode is archived as an event of type ``undecodable`` with its raw text;
nothing in the stream can stop the archiver.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Collection, Sequence
from typing import Any

import redis
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from zenith_archive._batch import BatchResult, plan_batch, write_batch
from zenith_archive._ingest import Decoder, Entry
from zenith_archive.autocleanup import AutoCleanup
from zenith_archive.migrations import current_revision, head_revision
from zenith_archive.redact import DEFAULT_REDACTED_KEYS, Redactor
from zenith_archive.schema import FINAL_STATES, State
from zenith_protocol import ConfigError, KeySpace

__all__ = [
    "ARCHIVABLE_STATES",
    "DEFAULT_CLAIM_IDLE_MS",
    "DEFAULT_GROUP",
    "DEFAULT_STATES",
    "Archiver",
    "BatchResult",
    "default_consumer",
    "require_migrated",
]

logger = logging.getLogger(__name__)

DEFAULT_GROUP = "archive"
DEFAULT_BATCH = 5_000
DEFAULT_CLAIM_IDLE_MS = 30_000
"""Entries another consumer has held unacknowledged this long are taken over (it is presumed dead)."""
ARCHIVABLE_STATES: frozenset[str] = FINAL_STATES | {State.WAITING}
DEFAULT_STATES: frozenset[str] = FINAL_STATES
"""Completed, dead-lettered and deleted jobs are archived in full (the Node archive kept completed and failed ones)."""
_BLOCK_MS = 1_000
_WRITE_ATTEMPTS = 5
_RETRY_FIRST_S, _RETRY_MAX_S = 0.5, 30.0


def default_consumer() -> str:
    """This process's consumer name: ``host-pid``."""
    return f"{socket.gethostname()}-{os.getpid()}"


def require_migrated(engine: Engine) -> None:
    """Raise :class:`~zenith_protocol.ConfigError` unless the archive at ``engine`` is at the newest revision."""
    with engine.connect() as connection:
        revision = current_revision(connection)
    if revision != head_revision():
        where = engine.url.render_as_string(hide_password=True)
        state = "has no archive tables yet" if revision is None else f"is at revision {revision}"
        raise ConfigError(f"the archive at {where} {state}; run `zenith archive migrate --db URL` first")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Archiver:
    """Copies the events stream into the archive at ``engine``; see the module docstring.

    Args:
        client: a redis-py client (bytes or decoded replies both work).
        engine: the archive (migrated: :func:`zenith_archive.migrate`).
        keyspace: key names (default: the wire layout).
        group: the consumer group; archivers of one archive share it.
        consumer: this archiver's name in the group (default :func:`default_consumer`). Restarted
            under the same name it re-reads its own pending entries at once; under another name
            they are claimed after ``claim_idle_ms``.
        batch: entries per transaction.
        states: which final states are archived in full (payload, fields, timeline) and written
            to the Node console's ``flux_job_archive``: any of ``completed``, ``dead``,
            ``deleted``, and ``waiting`` (every enqueued job also goes to ``flux_job_archive``, as
            the Node archive's ``archiveEnqueued`` did). A job that ends in a state left out keeps
            only its summary row (queue, id, name, state, times).
        redact: a hook run on each job payload after the default key list (:mod:`zenith_archive.redact`).
        claim_idle_ms: see ``consumer``.
        legacy_tables: also write ``flux_job_archive`` rows, so that the Node console shows the jobs.
        auto_cleanup: while :meth:`run` runs, delete old rows once a day when the maintenance
            settings in Redis say ``autoCleanup: true`` (:mod:`zenith_archive.autocleanup`); True
            for the defaults, an :class:`~zenith_archive.autocleanup.AutoCleanup` of your own, or False.
    """

    def __init__(
        self,
        client: redis.Redis,
        engine: Engine,
        *,
        keyspace: KeySpace | None = None,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        batch: int = DEFAULT_BATCH,
        states: Collection[str] = DEFAULT_STATES,
        redact: Redactor | None = None,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        legacy_tables: bool = True,
        auto_cleanup: AutoCleanup | bool = True,
    ) -> None:
        unknown = set(states) - ARCHIVABLE_STATES
        if unknown:
            raise ValueError(f"states may name {sorted(ARCHIVABLE_STATES)}, not {sorted(unknown)}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        if claim_idle_ms < 0:
            raise ValueError(f"claim_idle_ms must be 0 or more, got {claim_idle_ms}")
        self.client = client
        self.engine = engine
        self.keyspace = keyspace or KeySpace()
        self.stream = self.keyspace.events()
        self.group = group
        self.consumer = consumer or default_consumer()
        self.batch = batch
        self.states = frozenset(states)
        self.claim_idle_ms = claim_idle_ms
        self.legacy_tables = legacy_tables
        if auto_cleanup is True:
            auto_cleanup = AutoCleanup(client, engine, keyspace=self.keyspace)
        self.auto_cleanup = auto_cleanup or None
        self._decoder = Decoder(redact=redact, keys=DEFAULT_REDACTED_KEYS)
        self._stop = threading.Event()
        self._group_ready = False
        self._own_pending = True  # after a start or an error: re-read what this consumer holds
        self._next_claim = 0.0

    # -- reading ------------------------------------------------------------------------------

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's first entry: a new archive takes in everything the stream still holds.
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _read_group(self, start: str, block_ms: int | None) -> list[tuple[str, Any]]:
        streams: dict[Any, Any] = {self.stream: start}
        reply: Any = self.client.xreadgroup(self.group, self.consumer, streams, count=self.batch, block=block_ms)
        if not reply:
            return []
        # RESP2 replies [[stream, entries]]; RESP3 {stream: [entries]}.
        entries = reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0]
        return [(_text(entry_id), fields) for entry_id, fields in entries if entry_id is not None]

    def _claim(self) -> list[tuple[str, Any]]:
        """Entries dead consumers left pending, taken over by this one (at most one scan per ``claim_idle_ms / 2``)."""
        now = time.monotonic()
        if now < self._next_claim:
            return []
        claimed: list[tuple[str, Any]] = []
        cursor = "0-0"
        while len(claimed) < self.batch:
            reply = self.client.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.batch
            )
            cursor = _text(reply[0])
            claimed += [(_text(entry_id), fields) for entry_id, fields in reply[1]]
            # Entries trimmed before anyone archived them (Redis 7 drops them from the pending list):
            # archived as undecodable, so the archive shows the gap.
            claimed += [(_text(entry_id), None) for entry_id in (reply[2] if len(reply) > 2 else [])]
            if cursor == "0-0":
                self._next_claim = now + self.claim_idle_ms / 2000
                break
        return claimed

    def _read(self, block_ms: int | None) -> list[tuple[str, Any]]:
        self._ensure_group()
        if self._own_pending:
            entries = self._read_group("0", None)
            if entries:
                return entries
            self._own_pending = False
        return self._claim() or self._read_group(">", block_ms)

    # -- writing ------------------------------------------------------------------------------

    def _transaction(self, entries: Sequence[Entry]) -> BatchResult:
        # Worked out before the transaction: on SQLite other archivers wait for its write lock.
        plan = plan_batch(entries, self.states)
        with self.engine.connect() as connection:
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                return write_batch(
                    connection,
                    entries,
                    archived=self.states,
                    legacy=self.legacy_tables,
                    consumer=self.consumer,
                    plan=plan,
                )

    def _write(self, entries: Sequence[Entry]) -> BatchResult:
        """One transaction for ``entries``; retried on a deadlock or lost connection (it is idempotent)."""
        delay = 0.05
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                return self._transaction(entries)
            except OperationalError as exc:
                if attempt == _WRITE_ATTEMPTS:
                    raise
                logger.info("archive write failed (%s), attempt %d; retrying", exc.orig, attempt)
                self._stop.wait(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_apart(self, entries: Sequence[Entry]) -> BatchResult:
        """After the database refused a batch: each entry alone; one it still refuses is kept as undecodable."""
        totals = [0, 0, 0, 0]
        for entry in entries:
            try:
                result = self._write([entry])
            except DBAPIError as exc:
                if isinstance(exc, OperationalError):
                    raise
                logger.error("archive refused stream entry %s (%s); kept as undecodable", entry.stream_id, exc.orig)
                reason = f"the database refused it: {exc.orig}"
                result = self._write([Entry(entry.stream_id, entry.order, None, entry.data, reason=reason)])
            for index, value in enumerate((result.events, result.jobs, result.undecodable, result.duplicates)):
                totals[index] += value
        return BatchResult(*totals)

    # -- the loop -----------------------------------------------------------------------------

    def run_once(self, *, block_ms: int | None = 0) -> BatchResult:
        """Read one batch, write it, acknowledge it; waits up to ``block_ms`` for new entries (None: forever)."""
        # redis-py: block=None sends no BLOCK (return at once); BLOCK 0 waits forever.
        raw = self._read(None if block_ms == 0 else (block_ms or 0))
        if not raw:
            return BatchResult(0, 0, 0, 0)
        entries = [self._decoder.entry(entry_id, fields) for entry_id, fields in raw]
        try:
            result = self._write(entries)
        except DBAPIError as exc:
            if isinstance(exc, OperationalError):
                raise
            result = self._write_apart(entries)
        self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in raw])
        return result

    def run(self) -> None:
        """Archive until :meth:`stop`; errors of Redis or the database are logged and retried with backoff.

        The automatic cleanup (``auto_cleanup``) runs in a thread of its own; a run still going
        when this returns goes on (each of its batches is a transaction of its own).
        """
        require_migrated(self.engine)
        self._stop.clear()
        delay = _RETRY_FIRST_S
        while not self._stop.is_set():
            if self.auto_cleanup is not None:
                self.auto_cleanup.poll()
            try:
                self.run_once(block_ms=_BLOCK_MS)
            except Exception as exc:  # the archiver outlives outages; what it did not acknowledge is re-read
                if isinstance(exc, (redis.RedisError, OperationalError)):
                    logger.warning("archiver: %s; retrying in %.1f s", exc, delay)
                else:
                    logger.exception("archiver: unexpected error; retrying in %.1f s", delay)
                self._own_pending, self._group_ready = True, False
                self._stop.wait(delay)
                delay = min(delay * 2, _RETRY_MAX_S)
            else:
                delay = _RETRY_FIRST_S

    def stop(self) -> None:
        """Ask :meth:`run` to return (within about a second)."""
        self._stop.set()
