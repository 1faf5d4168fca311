"""Cron schedules: register, list, pause, resume, run now, and the ticker that fires due runs.

A schedule is a HASH plus its id in a ZSET index scored by the next run (PROTOCOL section 5),
the layout the Node system wrote, so schedules it registered are listed and fired here too.
Every ticker replica may run :meth:`Scheduler.tick` (or the loop :meth:`Scheduler.run`) at once:
one Lua script per firing makes each due run fire exactly once, and a schedule missed during
downtime fires once, not once per missed slot.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
from croniter import CroniterBadDateError, croniter
from redis.typing import EncodableT, FieldT

from zenith_protocol import (
    EventType,
    InvalidScheduleError,
    JobPayload,
    KeySpace,
    NotFoundError,
    OperatorAction,
    ProtocolError,
    Schedule,
    ZenithError,
    decode_schedule,
    encode_job,
    encode_schedule,
    lane_for,
    validate_queue_name,
)
from zenith_protocol.schedules import SCHEDULE_LOCK_TTL_S
from zenith_sdk._background import BackgroundLoop
from zenith_sdk._wire import storable, text_of
from zenith_sdk.events import EventEmitter, EventWriter, job_event
from zenith_sdk.scripts import ENQUEUE, FIRE_SCHEDULE, scripts_for

__all__ = ["InvalidScheduleEntry", "Scheduler", "next_run_ms", "previous_run_ms"]

logger = logging.getLogger(__name__)

DUE_BATCH = 500
"""Due ids one tick reads at most (a bounded ``ZRANGEBYSCORE ... LIMIT``)."""
DISCOVERY_TTL_S = 30.0
"""How long the SCAN for schedules missing from the index (paused ones) is reused."""
_WATCH_RETRIES = 5
_MAX_CANDIDATES = 1000
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True)
class InvalidScheduleEntry:
    """A schedule hash that does not decode, listed with its raw fields instead of raising."""

    id: str
    raw: dict[str, str]
    error: str
    next_run_ms: int | None = None
    enabled: bool = True


def _zone(schedule_id: str, name: str | None) -> ZoneInfo | timezone:
    if name is None:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidScheduleError(schedule_id, "timezone", name, "no such IANA time zone") from exc


def _check_cron(schedule_id: str, cron: str) -> bool:
    """Validate ``cron``; returns whether it has a leading seconds field (six fields)."""
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise InvalidScheduleError(
            schedule_id, "cron", cron, f"expected 5 fields (or 6 with seconds), got {len(fields)}"
        )
    seconds = len(fields) == 6
    if not croniter.is_valid(cron, second_at_beginning=seconds):
        raise InvalidScheduleError(schedule_id, "cron", cron, "a field is out of range or not understood")
    return seconds


def next_run_ms(cron: str, now_ms: int, tz: str | None = None, *, schedule_id: str = "?") -> int:
    """The first time ``cron`` names strictly after ``now_ms``, read in zone ``tz`` (UTC if ``None``).

    A local time that does not exist (spring forward) is skipped; one that occurs twice (fall
    back) counts once, at its first occurrence.

    Raises:
        InvalidScheduleError: the expression or the zone cannot be used, or the expression names
            no date that exists (it would never fire).
    """
    return _run_ms(cron, now_ms, tz, schedule_id, forward=True)


def previous_run_ms(cron: str, now_ms: int, tz: str | None = None, *, schedule_id: str = "?") -> int:
    """The latest time ``cron`` names at or before ``now_ms``, read in zone ``tz`` (UTC if ``None``).

    Local times are read as in :func:`next_run_ms`.

    Raises:
        InvalidScheduleError: the expression or the zone cannot be used, or the expression names
            no date that exists.
    """
    return _run_ms(cron, now_ms, tz, schedule_id, forward=False)


def _offset(moment: datetime, fold: int) -> timedelta:
    return moment.replace(fold=fold).utcoffset() or timedelta(0)


def _run_ms(cron: str, now_ms: int, tz: str | None, schedule_id: str, *, forward: bool) -> int:
    seconds = _check_cron(schedule_id, cron)
    zone = _zone(schedule_id, tz)
    # Iterate over naive local wall-clock times so that croniter never sees a DST jump, then
    # map each candidate to an instant ourselves.
    moment = datetime.fromtimestamp(now_ms / 1000, tz=zone)
    start = moment.replace(tzinfo=None)
    if not forward:
        start += timedelta(seconds=1)  # croniter looks strictly before its start; now itself counts
        if moment.fold:
            # Now is in the second pass of a repeated hour, whose local times count at their first
            # occurrence: every one of them up to now plus the hour given back is already past.
            start += _offset(moment, 0) - _offset(moment, 1)
    candidates = croniter(cron, start, second_at_beginning=seconds)
    for _ in range(_MAX_CANDIDATES):
        try:
            naive = candidates.get_next(datetime) if forward else candidates.get_prev(datetime)
        except CroniterBadDateError as exc:
            # croniter looks 50 years ahead: a date that never exists ("0 0 30 2 *", 30 February).
            raise InvalidScheduleError(
                schedule_id, "cron", cron, "it never fires: no date matches it (such as 30 February)"
            ) from exc
        local = naive.replace(tzinfo=zone, fold=0)
        if local.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
            continue  # does not exist in this zone (skipped by a DST change)
        at_ms = int(local.timestamp() * 1000)
        if at_ms > now_ms if forward else at_ms <= now_ms:
            return at_ms
    raise InvalidScheduleError(schedule_id, "cron", cron, "no run found in the time searched")  # pragma: no cover


def _decode_entry(schedule_id: str, raw: Mapping[Any, Any]) -> Schedule | InvalidScheduleEntry:
    try:
        schedule = decode_schedule(raw)
        if schedule.id != schedule_id:
            raise ValueError(f"its id field {schedule.id!r} differs from the key's {schedule_id!r}")
        validate_queue_name(schedule.queue)
        next_run_ms(schedule.cron, 0, schedule.timezone, schedule_id=schedule_id)
        return schedule
    except (ProtocolError, ZenithError, ValueError) as exc:
        fields = {text_of(k): text_of(v) for k, v in raw.items()}
        next_run = fields.get("nextRun", "")
        return InvalidScheduleEntry(
            id=schedule_id,
            raw=fields,
            error=str(exc),
            next_run_ms=int(next_run) if next_run.isdigit() else None,
            enabled=fields.get("enabled", "true").strip().lower() not in _FALSE,
        )


def _now_ms() -> int:
    return int(time.time() * 1000)


class Scheduler(EventWriter):
    """Manages cron schedules and fires them.

    Takes a client or URL, ``keyspace=`` and ``events=`` as :class:`~zenith_sdk.events.EventWriter` does.
    """

    def __init__(
        self,
        client: redis.Redis | str | None = None,
        *,
        keyspace: KeySpace | None = None,
        events: EventEmitter | bool = True,
    ) -> None:
        super().__init__(client, keyspace=keyspace, events=events)
        self._scripts = scripts_for(self.client)
        self._discovered: set[str] = set()
        self._discovered_at = float("-inf")
        self._reported: set[tuple[str, int]] = set()
        self._stopping = threading.Event()
        self._ticker: BackgroundLoop | None = None

    # -- reading -------------------------------------------------------------------------------

    def list(self, *, rescan: bool = False) -> builtins.list[Schedule | InvalidScheduleEntry]:
        """Every schedule, enabled or paused, sorted by id; undecodable ones as :class:`InvalidScheduleEntry`.

        Paused schedules are not in the index and are found by a SCAN, reused for
        :data:`DISCOVERY_TTL_S` seconds unless ``rescan``.
        """
        members = cast("list[bytes | str]", self.client.zrange(self.keyspace.schedules(), 0, -1))
        ids = {text_of(member) for member in members}
        ids |= self._discover(rescan)
        pipe = self.client.pipeline(transaction=False)
        ordered = sorted(ids)
        for schedule_id in ordered:
            pipe.hgetall(self.keyspace.schedule(schedule_id))
        found: builtins.list[Schedule | InvalidScheduleEntry] = []
        for schedule_id, raw in zip(ordered, pipe.execute(), strict=True):
            if raw:  # an index entry whose hash is gone, or a hash removed since the SCAN
                found.append(_decode_entry(schedule_id, raw))
        return found

    def _discover(self, rescan: bool) -> set[str]:
        if rescan or time.monotonic() - self._discovered_at > DISCOVERY_TTL_S:
            head = self.keyspace.schedule("")
            keys = self.client.scan_iter(match=f"{head}*", count=1000, _type="hash")
            self._discovered = {text_of(key)[len(head) :] for key in keys}
            self._discovered_at = time.monotonic()
        return set(self._discovered)

    def get(self, schedule_id: str) -> Schedule:
        """One schedule.

        Raises:
            NotFoundError: no such schedule.
            ProtocolError: its hash does not decode (see :meth:`list` for the raw fields).
        """
        raw = self.client.hgetall(self.keyspace.schedule(schedule_id))
        if not raw:
            raise NotFoundError("schedule", schedule_id, hint="list them with `zenith schedules list`")
        return decode_schedule(raw)

    # -- operator actions ----------------------------------------------------------------------

    def register(
        self,
        schedule_id: str,
        cron: str,
        queue: str,
        job_name: str,
        properties: dict[str, Any] | None = None,
        *,
        actor: str,
        timezone: str | None = None,
        enabled: bool = True,
        priority: str | None = None,
        max_attempts: int | None = None,
    ) -> Schedule:
        """Create or replace a schedule that pushes job ``job_name`` onto ``queue`` at the times ``cron`` names.

        Raises:
            InvalidScheduleError: the cron expression or the time zone cannot be used.
            ConfigError: the queue name cannot be used.
        """
        if not schedule_id or any(ch in schedule_id for ch in "*?[]\\\n\r"):
            raise ValueError(f"schedule id must be non-empty without glob characters, got {schedule_id!r}")
        validate_queue_name(queue)
        now_ms = _now_ms()
        schedule = Schedule(
            id=schedule_id,
            cron=cron,
            queue=queue,
            job=JobPayload.create(
                job_name, properties, job_id=f"sched-{schedule_id}", priority=priority, max_attempts=max_attempts
            ),
            next_run_ms=next_run_ms(cron, now_ms, timezone, schedule_id=schedule_id),
            enabled=enabled,
            timezone=timezone,
        )
        key = self.keyspace.schedule(schedule_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)  # a re-registration leaves no stale field behind
        fields: dict[FieldT, EncodableT] = {name: value for name, value in encode_schedule(schedule).items()}
        pipe.hset(key, mapping=fields)
        if enabled:
            pipe.zadd(self.keyspace.schedules(), {schedule_id: schedule.next_run_ms or 0})
        else:
            pipe.zrem(self.keyspace.schedules(), schedule_id)
        pipe.execute()
        self._discovered.add(schedule_id)
        self._operator(OperatorAction.SCHEDULE_REGISTER, queue, actor)
        logger.info("schedule registered id=%s cron=%r queue=%s actor=%s", schedule_id, cron, queue, actor)
        return schedule

    def remove(self, schedule_id: str, *, actor: str) -> None:
        """Delete a schedule (its hash and its index entry).

        Raises:
            NotFoundError: no such schedule.
        """
        key = self.keyspace.schedule(schedule_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(key, "queue")
        pipe.delete(key)
        pipe.zrem(self.keyspace.schedules(), schedule_id)
        queue, deleted, unindexed = pipe.execute()
        self._discovered.discard(schedule_id)
        if not deleted and not unindexed:
            raise NotFoundError("schedule", schedule_id, hint="list them with `zenith schedules list`")
        self._operator(OperatorAction.SCHEDULE_REMOVE, text_of(queue or b""), actor)

    def pause(self, schedule_id: str, *, actor: str) -> None:
        """Stop a schedule firing; it is kept (``enabled`` false) and listed as paused.

        Raises:
            NotFoundError: no such schedule.
        """
        self._set_enabled(schedule_id, False, actor)

    def resume(self, schedule_id: str, *, actor: str) -> int:
        """Let a paused schedule fire again; its next run is recomputed from now and returned.

        Raises:
            NotFoundError: no such schedule.
            InvalidScheduleError: its cron expression or time zone cannot be used.
        """
        return self._set_enabled(schedule_id, True, actor) or 0

    def _set_enabled(self, schedule_id: str, enabled: bool, actor: str) -> int | None:
        key = self.keyspace.schedule(schedule_id)
        # WATCH, since the write depends on the hash existing (and, to resume, on its cron);
        # a concurrent change is retried, and after _WATCH_RETRIES the WatchError reaches the caller.
        for attempt in range(_WATCH_RETRIES):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    if not pipe.exists(key):
                        raise NotFoundError("schedule", schedule_id, hint="list them with `zenith schedules list`")
                    cron, tz, queue = (
                        None if v is None else text_of(v) for v in pipe.hmget(key, "cron", "timezone", "queue")
                    )
                    next_run = next_run_ms(cron or "", _now_ms(), tz, schedule_id=schedule_id) if enabled else None
                    pipe.multi()
                    if next_run is None:
                        pipe.hset(key, "enabled", "false")
                        pipe.zrem(self.keyspace.schedules(), schedule_id)
                    else:
                        pipe.hset(key, mapping={"enabled": "true", "nextRun": str(next_run)})
                        pipe.zadd(self.keyspace.schedules(), {schedule_id: next_run})
                    pipe.execute()
                    break
                except redis.WatchError:
                    if attempt == _WATCH_RETRIES - 1:
                        raise
        action = OperatorAction.SCHEDULE_RESUME if enabled else OperatorAction.SCHEDULE_PAUSE
        self._operator(action, queue or "", actor)
        return next_run

    def run_now(self, schedule_id: str, *, actor: str) -> str:
        """Push the schedule's job now, without touching its next or last run; returns the job id.

        Raises:
            NotFoundError: no such schedule.
            ProtocolError: its hash does not decode.
        """
        schedule = self.get(schedule_id)
        job = self._fresh_job(schedule, _now_ms())
        self._push(schedule, job, encode_job(job))
        self._enqueued(schedule, job)
        self._operator(OperatorAction.SCHEDULE_RUN, schedule.queue, actor)
        return job.id

    # -- firing --------------------------------------------------------------------------------

    def tick(self, now_ms: int | None = None) -> builtins.list[str]:
        """Fire every due run once; returns the ids of the schedules this call fired.

        Safe to run on every replica at once. A schedule that cannot be read or whose cron
        expression or zone is unusable is left untouched and logged; it never stops the others.
        """
        now = _now_ms() if now_ms is None else now_ms
        due = cast(
            "list[tuple[bytes | str, float]]",
            self.client.zrangebyscore(self.keyspace.schedules(), "-inf", now, start=0, num=DUE_BATCH, withscores=True),
        )
        if not due:
            return []
        pipe = self.client.pipeline(transaction=False)
        for member, _score in due:
            pipe.hgetall(self.keyspace.schedule(text_of(member)))
        fired: builtins.list[str] = []
        for (member, score), raw in zip(due, pipe.execute(), strict=True):
            schedule_id = text_of(member)
            if self._fire(schedule_id, score, raw, now):
                fired.append(schedule_id)
        return fired

    def run(self, *, interval_s: float = 1.0, stop: threading.Event | None = None) -> None:
        """Fire due schedules every ``interval_s`` seconds, in the calling thread, until stopped.

        For an application that embeds the ticker (``zenith scheduler`` runs this). It returns
        within one interval of :meth:`stop` being called, or of ``stop`` being set, from another
        thread or a signal handler: handling signals is the caller's job. A Redis outage is
        logged once and retried with backoff, and a tick that fails is logged; neither ends the
        loop. Several tickers may run at once, anywhere: each due run fires once.
        """
        ticker = BackgroundLoop("zenith-scheduler", interval_s, self.tick, stop=stop)
        self._ticker = ticker
        try:
            if not self._stopping.is_set():  # stop() may have come first
                ticker.run()
        finally:
            self._ticker = None
            self._stopping.clear()

    def stop(self) -> None:
        """End :meth:`run` (safe from any thread or a signal handler, and when it is not running)."""
        self._stopping.set()
        ticker = self._ticker
        if ticker is not None:
            ticker.stop()

    def _fire(self, schedule_id: str, score: float, raw: Mapping[Any, Any], now_ms: int) -> bool:
        if raw and text_of(raw.get(b"enabled", raw.get("enabled", b"true"))).strip().lower() in _FALSE:
            # Paused by a writer that left it in the index: drop it from the index, as 5.5 says.
            self.client.zrem(self.keyspace.schedules(), schedule_id)
            return False
        entry = _decode_entry(schedule_id, raw) if raw else None
        if not isinstance(entry, Schedule):
            self._report(schedule_id, int(score), entry.error if entry else "its hash is missing")
            return False
        job = self._fresh_job(entry, now_ms)
        next_run = next_run_ms(entry.cron, now_ms, entry.timezone, schedule_id=schedule_id)
        space = self.keyspace
        keys = [space.schedules(), space.schedule(schedule_id), space.schedule_lock(schedule_id, int(score) // 1000)]
        if not space.cluster_safe:
            keys += [self._lane(entry), *self._group_keys(entry)]
        raw_job = encode_job(job)
        expected = int(score) if score.is_integer() else repr(score)
        args = [schedule_id, expected, now_ms, next_run, raw_job, SCHEDULE_LOCK_TTL_S, storable(job.group_id or "")]
        if not self._scripts.call(FIRE_SCHEDULE, keys, args):
            logger.debug("schedule run already fired elsewhere id=%s run=%d", schedule_id, int(score))
            return False
        if space.cluster_safe:
            # The lane lives in another slot: the run is claimed; a crash right here loses this one run.
            self._push(entry, job, raw_job)
        else:
            self.client.sadd(space.queue_index(), entry.queue)
        self._enqueued(entry, job)
        logger.info("schedule fired id=%s queue=%s job=%s next=%d", schedule_id, entry.queue, job.id, next_run)
        return True

    def _report(self, schedule_id: str, run_ms: int, error: str) -> None:
        # Logged once per run, not on every tick, while the schedule stays due and broken.
        if (schedule_id, run_ms) not in self._reported:
            self._reported.add((schedule_id, run_ms))
            logger.warning("schedule not fired, left untouched id=%s: %s; fix or remove it", schedule_id, error)

    # -- helpers -------------------------------------------------------------------------------

    def _lane(self, schedule: Schedule) -> str:
        return self.keyspace.lane(schedule.queue, lane_for(schedule.job.priority))

    def _group_keys(self, schedule: Schedule) -> builtins.list[str]:
        """The group set and the group's pending list, for a job of a FIFO group (else none)."""
        group = schedule.job.group_id
        if not group:
            return []
        return [
            self.keyspace.group_active(schedule.queue),
            self.keyspace.group_pending(schedule.queue, storable(group)),
        ]

    def _push(self, schedule: Schedule, job: JobPayload, raw_job: str) -> None:
        """Push a run's job onto its lane (admitted to its FIFO group, if it has one)."""
        if job.group_id:
            keys = [self._lane(schedule), *self._group_keys(schedule)]
            self._scripts.call(ENQUEUE, keys, [raw_job, storable(job.group_id)])
        else:
            self.client.lpush(self._lane(schedule), raw_job)
        self.client.sadd(self.keyspace.queue_index(), schedule.queue)

    @staticmethod
    def _fresh_job(schedule: Schedule, now_ms: int) -> JobPayload:
        # PROTOCOL 5.5: each run gets a fresh id and createdAt; legacy tickers reused the id.
        return schedule.job.model_copy(update={"id": str(uuid.uuid4()), "created_at_ms": now_ms})

    def _enqueued(self, schedule: Schedule, job: JobPayload) -> None:
        if self.events is not None:
            self.events.emit(job_event(EventType.ENQUEUED, schedule.queue, job, include_payload=True))

    def _operator(self, action: OperatorAction, queue: str, actor: str) -> None:
        if self.events is not None:
            self.events.emit(job_event(EventType.OPERATOR, queue, actor=actor, action=action, count=1))
