"""The worker loop: fetch into a processing list, run handlers on slot threads, settle, repeat.

One loop thread owns every Redis write that touches the processing lists, so it always
knows which fetched jobs it holds. Each turn is one round trip: a MULTI holding the acks,
retries and dead letters of finished jobs, their lifecycle events, and the next fetch. A job
that ends before the round trip after its start has one event for its whole attempt.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from zenith_protocol import LANES_IN_POLL_ORDER, JobEvent, KeySpace, ProtocolError, WorkerStatus, decode_job
from zenith_sdk.connection import DEFAULT_REDIS_URL, RedisSettings
from zenith_sdk.events import AttemptEvents, EncodedEvent, EventEmitter, LaterCompleted
from zenith_sdk.scripts import FETCH, ScriptPipeline, scripts_for
from zenith_sdk.worker._app import App, Handler, HandlerFn, JobContext
from zenith_sdk.worker._heartbeat import BusyState, HeartbeatLoop
from zenith_sdk.worker._options import WorkerOptionFields, WorkerOptions
from zenith_sdk.worker._outcomes import Fetched, Op, error_text, failure, invalid_payload, stack_text, success
from zenith_sdk.worker._recovery import requeue_processing, take_back_leftovers
from zenith_sdk.worker._slots import SlotPool, Task
from zenith_sdk.worker._wake import Waker

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["Worker"]

logger = logging.getLogger(__name__)

_FIRST_IDLE_S = 0.005
_FIRST_OUTAGE_S = 0.1
_MAX_OUTAGE_S = 5.0
_START_ATTEMPTS = 5
"""Tries to start (0.1 + 0.2 + 0.4 + 0.8 s apart) before a worker that cannot reach Redis gives up."""
_MAX_WRITE_DELAY_S = 0.05
_MEMORY_LOOK_S = 1.0
"""Resident memory is looked at after a job at most this often (``max_memory_mb``)."""


def _own_client(target: redis.Redis | str | RedisSettings | None, name: str) -> redis.Redis:
    """A client of our own, its connections named ``name``, with automatic retries off.

    redis-py re-sends a command whose reply was lost; for a fetch or a settle that could apply
    twice. The loop handles connection errors itself and reconciles with Redis afterwards.
    """
    if isinstance(target, redis.Redis):
        pool = target.connection_pool
        kwargs = {**pool.connection_kwargs, "client_name": name}
        client = redis.Redis(connection_pool=pool.__class__(connection_class=pool.connection_class, **kwargs))
    else:
        settings = target if isinstance(target, RedisSettings) else RedisSettings.from_url(target or DEFAULT_REDIS_URL)
        client = settings.client(client_name=name)
    client.set_retry(Retry(NoBackoff(), 0))
    return client


class _Running:
    __slots__ = ("item", "handler", "attempt", "deadline", "started_ms")

    def __init__(self, item: Fetched, handler: Handler, attempt: int, deadline: float | None, started_ms: int) -> None:
        self.item = item
        self.handler = handler
        self.attempt = attempt
        self.deadline = deadline
        self.started_ms = started_ms


@dataclass
class _Batch:
    """What one round trip carries. When it lands, exactly this is forgotten: not what was added
    while its fate was unknown (jobs keep finishing while Redis is away)."""

    ops: int
    """The first ``ops`` of the pending acknowledgements."""
    pending: int
    """The first ``pending`` of the pending events."""
    staged: int
    """Entries of this worker's staged events list before it."""
    events: Sequence[EncodedEvent] = ()
    written: bool = False
    """Whether it writes its events and the staged ones to the stream (else it stages its events)."""
    starts: tuple[int, ...] = ()
    """The running jobs whose started events it carries."""


_Finished = tuple[int, _Running, BaseException | None, float]


class Worker:
    """Runs jobs from Zenith queues with reliable fetch: nothing is lost when it dies.

    Args:
        app: an :class:`App`, or a mapping of job name to handler.
        client: a redis-py client, a URL or :class:`RedisSettings`.
        keyspace: key names (default: the wire layout).
        options: a :class:`WorkerOptions`; keyword arguments build one instead.
    """

    def __init__(
        self,
        app: App | Mapping[str, HandlerFn],
        client: redis.Redis | str | RedisSettings | None = None,
        *,
        keyspace: KeySpace | None = None,
        options: WorkerOptions | None = None,
        **option_fields: Unpack[WorkerOptionFields],
    ) -> None:
        if options is not None and option_fields:
            raise TypeError("pass either options= or option keywords, not both")
        self.app = app if isinstance(app, App) else App(app)
        self.options = options or WorkerOptions(**option_fields)
        self.keyspace = keyspace or KeySpace()
        self.client = _own_client(client, f"zenith-worker:{self.options.worker_id}")
        self.scripts = scripts_for(self.client)
        self.events = EventEmitter(self.client, keyspace=self.keyspace) if self.options.events else None
        self._attempt_events = AttemptEvents(self.options.worker_id) if self.options.events else None
        self.id = self.options.worker_id
        # The fetch script's keys but the rate-limit window's: lanes, delayed sets, flags, processing list.
        self._fetch_keys = {
            queue: [
                *self.keyspace.lanes_in_poll_order(queue),
                *self.keyspace.delayed_in_poll_order(queue),
                *self.keyspace.paused_in_poll_order(queue),
                self.keyspace.processing(queue, self.id),
            ]
            for queue in self.options.queues
        }
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._ready: deque[Fetched] = deque()
        self._running: dict[int, _Running] = {}
        self._ops: list[Op] = []
        self._pending_events: list[JobEvent | EncodedEvent | LaterCompleted] = []
        self._pending_since = 0.0
        # Events go to the stream together, one call per _MAX_WRITE_DELAY_S at most (PROTOCOL 8.1):
        # until then, those that report an acknowledgement are staged in Redis by the transaction
        # that makes it (a recoverer writes them if this worker dies), and the started events of
        # running jobs wait here: a job that ends first gets one event for its whole attempt
        # instead (PROTOCOL 8.4).
        self._unwritten: list[EncodedEvent] = []
        self._staged_entries = 0
        self._unwritten_starts: dict[int, _Running] = {}
        self._unwritten_since = 0.0
        # The round trip sent last, until it lands or its fate is found out after a lost connection;
        # jobs whose started event it carries are finished only once that fate is known.
        self._in_flight: _Batch | None = None
        self._unreconciled = False
        self._deferred: list[_Finished] = []
        self._tokens = 0
        self._busy = BusyState(WorkerStatus.IDLE)
        self._slots = SlotPool(self.options.concurrency, f"zenith-{self.id}")
        wake = self.options.wake
        self._waker = Waker(self.client, self.keyspace, self.options.queues, self._slots.wake) if wake else None
        # Per queue, what its last empty fetch said: ms until its next delayed job is due (-1: none),
        # and whether its base list was empty (so that waiting on it is worthwhile).
        self._idle: dict[str, tuple[int, bool]] = {}
        self._heartbeat = HeartbeatLoop(self.client, self.keyspace, self.options, lambda: self._busy, self.events)
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.failed = 0
        self._next_memory_look = 0.0

    # -- lifecycle ------------------------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT when called from the main thread)."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                self._main()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        else:
            self._main()

    def start(self) -> None:
        """Run in a background thread (for tests and embedding); :meth:`stop` ends it."""
        self._thread = threading.Thread(target=self.run, kwargs={"install_signal_handlers": False}, daemon=True)
        self._thread.start()

    def stop(self, *, timeout_s: float | None = None) -> None:
        """Stop fetching, let running jobs finish (up to the shutdown timeout), put the rest back."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def request_stop(self, *, force: bool = False) -> None:
        """Begin a graceful stop (``force``: do not wait for running jobs). Safe from any thread."""
        now = time.monotonic()
        deadline = now if force else now + self.options.shutdown_timeout_s
        self._deadline = deadline if self._deadline is None else min(self._deadline, deadline)
        self._stop.set()
        self._slots.wake()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        force = self._stop.is_set()
        logger.warning("worker=%s got signal %s; %s", self.id, signum, "stopping now" if force else "stopping")
        self.request_stop(force=force)

    def _main(self) -> None:
        self._start_up()
        self._slots.start()
        if self._waker is not None:
            self._waker.start()
        logger.info("worker=%s started on queues %s", self.id, ",".join(self.options.queues))
        try:
            self._loop()
        finally:
            if self._waker is not None:
                self._waker.stop()
            self._slots.stop()
            self._shutdown()

    def _start_up(self) -> None:
        """Load the scripts, take back what an earlier run under this id left, and beat: a connection
        dropped meanwhile is tried again a few times (this client's own retries are off), while Redis
        still down after them raises."""
        for attempt in range(_START_ATTEMPTS):
            try:
                self.scripts.load()
                queues, space = self.options.queues, self.keyspace
                take_back_leftovers(self.client, self.id, queues, keyspace=space, events=self.events)
                self._heartbeat.start()
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if attempt == _START_ATTEMPTS - 1:
                    raise
                wait_s = _FIRST_OUTAGE_S * 2**attempt
                logger.warning("worker=%s could not start (%s); trying again in %.1f s", self.id, exc, wait_s)
                self._stop.wait(wait_s)

    def _shutdown(self) -> None:
        put_back = False
        try:
            self._flush_until_done()
            for queue in self.options.queues:
                moved = requeue_processing(self.client, queue, self.id, keyspace=self.keyspace)
                if moved:
                    logger.warning("worker=%s put %d unfinished jobs back on queue=%s", self.id, moved, queue)
            put_back = True
        except redis.RedisError as exc:
            # Redis is gone or refused: the jobs stay in this worker's processing lists and the
            # registration stays, so any other worker (or `zenith recover`) puts them back once
            # this heartbeat has expired.
            logger.warning("worker=%s could not put its jobs back (%s); others will recover them", self.id, exc)
        self._heartbeat.stop(deregister=put_back)
        self.client.connection_pool.disconnect()  # the pool is this worker's own (see _own_client)
        logger.info("worker=%s stopped after %d jobs", self.id, self.processed)

    def _flush_until_done(self) -> None:
        attempts = 0
        while (self._writes_pending() or self._events_unwritten() or self._deferred) and attempts < 5:
            attempts += 1
            try:
                self._round_trip(0)
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(_FIRST_OUTAGE_S * attempts)
                self._reconcile_safely()

    # -- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        idle_s = _FIRST_IDLE_S
        outage_s = _FIRST_OUTAGE_S
        while True:
            self._collect(block_s=0)
            self._expire_timeouts()
            stopping = self._stop.is_set()
            if stopping and (not self._running or time.monotonic() >= (self._deadline or 0)):
                return
            if not stopping:
                self._dispatch()
            want = self._want()
            if want > 0 or self._flush_due() or self._events_due():
                try:
                    fetched = self._round_trip(want)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    logger.warning("worker=%s lost Redis (%s); retrying in %.1f s", self.id, exc, outage_s)
                    self._stop.wait(outage_s)
                    outage_s = min(outage_s * 2, _MAX_OUTAGE_S)
                    self._reconcile_safely()
                    continue
                outage_s = _FIRST_OUTAGE_S
                if fetched:
                    idle_s = _FIRST_IDLE_S
                    continue
            if want <= 0:
                self._collect(block_s=self._wait_s(self.options.poll_interval_s))
                continue
            self._collect(block_s=self._wait_s(self._idle_wait_s(idle_s)))
            idle_s = min(idle_s * 2, self.options.poll_interval_s)

    def _idle_wait_s(self, backoff_s: float) -> float:
        """How long to wait after a fetch found nothing: until a waker fires, a delayed job is due,
        or the poll interval ends; without wakers, the growing ``backoff_s``."""
        if self._waker is None or not self._waker.watching:
            wait = backoff_s
        else:
            wait = self.options.poll_interval_s
            for queue, (_, watch) in self._idle.items():
                if watch:
                    self._waker.arm(queue)
        for due_ms, _ in self._idle.values():
            if due_ms >= 0:
                wait = min(wait, due_ms / 1000)
        return wait

    def _want(self) -> int:
        """Jobs to fetch now: none while enough are waiting locally, else up to capacity."""
        if self._stop.is_set() or len(self._ready) >= self.options.concurrency:
            return 0
        return max(0, self.options.capacity - len(self._running) - len(self._ready))

    def _flush_due(self) -> bool:
        """Whether pending acks and events should go now rather than ride with the next fetch.

        Batching them is what keeps round trips per job low; they wait at most
        ``_MAX_WRITE_DELAY_S``, and never once this worker has nothing else to do. A job that
        ends before they go has one event for its whole attempt.
        """
        if not self._writes_pending():
            return False
        if not self._running or len(self._ops) >= self.options.capacity or self._stop.is_set():
            return True
        return time.monotonic() - self._pending_since >= _MAX_WRITE_DELAY_S

    def _events_due(self) -> bool:
        """Whether the staged events should go to the stream now: they are old enough, or this worker
        has nothing else to do (a job that waits for its predecessor's events should not wait long)."""
        if not self._events_unwritten():
            return False
        return self._at_rest() or time.monotonic() - self._unwritten_since >= _MAX_WRITE_DELAY_S

    def _at_rest(self) -> bool:
        """Whether this worker is stopping or has no job running or waiting."""
        return self._stop.is_set() or not (self._running or self._ready)

    def _wait_s(self, idle_s: float) -> float:
        wait = idle_s
        deadlines = [run.deadline for run in self._running.values() if run.deadline is not None]
        if self._writes_pending():
            deadlines.append(self._pending_since + _MAX_WRITE_DELAY_S)
        if self._events_unwritten():
            deadlines.append(self._unwritten_since + _MAX_WRITE_DELAY_S)
        if self._stop.is_set() and self._deadline is not None:
            deadlines.append(self._deadline)
        if deadlines:
            wait = min(wait, max(0.0, min(deadlines) - time.monotonic()))
        return wait

    def _round_trip(self, want: int) -> int:
        """One MULTI: pending writes and events, then a fetch for ``want`` jobs. Returns jobs fetched."""
        queues = self.options.queues
        if self._unreconciled:  # a failed round trip's writes may have landed: find out before sending them
            self._reconcile()
        if not (want > 0 or self._writes_pending() or self._events_due()):
            return 0
        batch = _Batch(len(self._ops), len(self._pending_events), self._staged_entries)
        pipe = self.scripts.pipeline(transaction=True)
        for op in self._ops:
            op.queue_on(pipe)
        if self.events is not None:
            self._queue_events(pipe, self.events, batch)
        if want > 0:
            self._queue_fetch(pipe, queues[0], want)
        self._in_flight = batch
        results = pipe.execute(raise_on_error=False)
        self._landed(batch)
        for result in results:
            if isinstance(result, Exception):
                logger.error("worker=%s: Redis refused a write: %s", self.id, result)
        count = self._accept(queues[0], results[-1] if want > 0 else [])
        for queue in queues[1:]:
            if count >= want:
                break
            count += self._fetch_more(queue, want - count)
        return count

    def _queue_events(self, pipe: ScriptPipeline, emitter: EventEmitter, batch: _Batch) -> None:
        """Queue this round trip's events: staged, in the transaction that acknowledges what they report, so
        a worker that dies leaves them to its recoverer; every _MAX_WRITE_DELAY_S at most, with the
        staged ones, to the stream (and the staged list emptied).

        Started events alone, with nothing staged before them, are staged first and written by the
        next round trip: a round trip whose reply is lost must leave a trace of whether it ran (its
        first acknowledgement, or the length of the staged list) for :meth:`_reconcile` to find.
        """
        due = self._events_due() or (bool(self._pending_events) and self._at_rest())
        starts = dict(self._unwritten_starts) if due else {}
        events = emitter.prepare([*self._start_events(starts.values()), *self._pending_events])
        written = due and (batch.ops > 0 or batch.staged > 0)
        if written:
            emitter.write(pipe, [*self._unwritten, *events])
            pipe.commands.delete(self.keyspace.staged_events(self.id))
        else:
            emitter.stage(pipe, self.id, events)
        batch.events, batch.written, batch.starts = events, written, tuple(starts)

    def _landed(self, batch: _Batch) -> None:
        """Forget the writes of ``batch``, which has landed."""
        del self._ops[: batch.ops]
        del self._pending_events[: batch.pending]
        for token in batch.starts:
            self._unwritten_starts.pop(token, None)
        if batch.written:
            self._unwritten, self._staged_entries = [], 0
        elif batch.events:
            self._note_unwritten()
            self._unwritten.extend(batch.events)
            self._staged_entries += 1
        self._in_flight = None

    def _queue_fetch(self, pipe: ScriptPipeline, queue: str, want: int) -> None:
        limit = self.options.rate_limits.get(queue)
        window_key = self.keyspace.rate_limit(queue, int(time.time()) // limit.window_s if limit else 0)
        args: list[str | int] = [want, self.options.promote_batch, limit.max_jobs if limit else 0]
        keys = [*self._fetch_keys[queue], window_key]
        pipe.call(FETCH, keys, [*args, limit.window_s if limit else 0])

    def _fetch_more(self, queue: str, want: int) -> int:
        pipe = self.scripts.pipeline(transaction=False)
        self._queue_fetch(pipe, queue, want)
        (fetched,) = pipe.execute(raise_on_error=False)
        if isinstance(fetched, Exception):
            logger.error("worker=%s: Redis refused a fetch: %s", self.id, fetched)
        return self._accept(queue, fetched)

    def _accept(self, queue: str, reply: Any) -> int:
        """Take the fetch script's ``[lane, raw, lane, raw, ...]`` into the ready queue; returns jobs fetched.

        A fetched job of a FIFO group runs: the group was admitted when the job was pushed (or
        released to it), so finding the group held is expected, not a sign another job runs.
        """
        if not isinstance(reply, list) or not reply:
            return 0
        if len(reply) % 2:  # {0, due, watch}: nothing fetched
            self._idle[queue] = (int(reply[1]), bool(reply[2]))
            return 0
        for number, raw in zip(reply[::2], reply[1::2]):
            self._ready.append(self._decode(queue, raw, LANES_IN_POLL_ORDER[int(number) - 1]))
        return len(reply) // 2

    @staticmethod
    def _decode(queue: str, raw: bytes, lane: str | None = None) -> Fetched:
        try:
            return Fetched(queue, raw, decode_job(raw), lane=lane)
        except ProtocolError as exc:
            return Fetched(queue, raw, None, f"{exc.kind.value}: {exc.reason}", lane)

    # -- running jobs ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        now_ms = int(time.time() * 1000)
        while self._ready and len(self._running) < self.options.concurrency:
            item = self._ready.popleft()
            if item.payload is None:
                ops, event = invalid_payload(self.keyspace, item, self.id, now_ms)
                self._settle(ops, [event], failed=True)
                continue
            handler = self.app.get(item.payload.name)
            attempt = (item.payload.attempts or 0) + 1
            if handler is None:
                error = f"no handler for job {item.payload.name!r}; this worker handles {self.app.names()}"
                ops, events = failure(self.keyspace, item, self.id, attempt, 1, error, now_ms, retryable=False)
                self._settle(ops, events, failed=True)
                continue
            timeout_s = handler.timeout_s or self.options.default_timeout_s
            self._tokens += 1
            deadline = time.monotonic() + timeout_s if timeout_s else None
            run = self._running[self._tokens] = _Running(item, handler, attempt, deadline, now_ms)
            if self._attempt_events is not None:  # a worker that writes no events builds none
                self._note_unwritten()
                self._unwritten_starts[self._tokens] = run
            self._slots.submit(Task(self._tokens, handler, JobContext(item.payload, item.queue, attempt, self.id)))
        self._update_busy()

    def _collect(self, *, block_s: float) -> None:
        outcomes = self._slots.collect(block_s)
        for outcome in outcomes:
            run = self._running.pop(outcome.token, None)
            if run is not None:
                self._finish_or_defer(outcome.token, run, outcome.error, outcome.duration_ms)
        if outcomes:
            self._update_busy()

    def _finish_or_defer(self, token: int, run: _Running, error: BaseException | None, duration_ms: float) -> None:
        """Finish a job, or wait to while the round trip carrying its started event has an unknown fate
        (whether its completed event must carry the start depends on it)."""
        if self._in_flight is not None and token in self._in_flight.starts:
            self._deferred.append((token, run, error, duration_ms))
        else:
            self._finish(token, run, error, duration_ms)

    def _expire_timeouts(self) -> None:
        now = time.monotonic()
        for token, run in list(self._running.items()):
            if run.deadline is not None and now >= run.deadline:
                del self._running[token]
                self._slots.abandon(token)
                timeout_s = run.handler.timeout_s or self.options.default_timeout_s
                error = TimeoutError(f"job timed out after {timeout_s:g} s")
                self._finish_or_defer(token, run, error, (timeout_s or 0) * 1000)

    def _finish(self, token: int, run: _Running, error: BaseException | None, duration_ms: float) -> None:
        item = run.item
        attempts = self._attempt_events
        unwritten = self._unwritten_starts.pop(token, None) is not None
        if error is None:
            started_ms = run.started_ms if unwritten else None
            done = success(
                self.keyspace, item, self.id, run.attempt, duration_ms, events=attempts, started_ms=started_ms
            )
            self._settle(*done, failed=False)
            return
        if unwritten and attempts is not None and item.payload is not None:
            self._pending_events.append(attempts.started(item.queue, item.payload, run.attempt, run.started_ms))
        payload = item.payload
        # As the Node consumer reads it: an absent or 0 maxAttempts means the default.
        max_attempts = (payload.max_attempts if payload else None) or run.handler.max_attempts
        max_attempts = max_attempts or self.options.default_max_attempts
        logger.warning(
            "job=%s queue=%s attempt=%d failed: %s",
            payload.id if payload else None,
            item.queue,
            run.attempt,
            error_text(error),
        )
        now_ms = int(time.time() * 1000)
        ops, events = failure(
            self.keyspace, item, self.id, run.attempt, max_attempts, error_text(error), now_ms,
            duration_ms=duration_ms, stack=stack_text(error),
        )  # fmt: skip
        self._settle(ops, events, failed=True)

    def _settle(
        self, ops: list[Op], events: Sequence[JobEvent | EncodedEvent | LaterCompleted], *, failed: bool
    ) -> None:
        self._mark_pending()
        self._ops.extend(ops)
        self._pending_events.extend(events)
        self.processed += 1
        self.failed += int(failed)
        self._recycle_when_due()

    def _recycle_when_due(self) -> None:
        """Begin a graceful stop once ``max_jobs`` jobs have run or memory is above ``max_memory_mb``."""
        if self._stop.is_set():
            return
        limit = self.options.max_jobs
        if limit is not None and self.processed >= limit:
            logger.info("worker=%s ran %d jobs (max_jobs); stopping", self.id, self.processed)
            self.request_stop()
            return
        ceiling = self.options.max_memory_mb
        now = time.monotonic()
        if ceiling is None or now < self._next_memory_look:
            return
        self._next_memory_look = now + _MEMORY_LOOK_S
        resident_mb = psutil.Process().memory_info().rss / 2**20
        if resident_mb > ceiling:
            logger.warning("worker=%s uses %.0f MiB (max_memory_mb %.0f); stopping", self.id, resident_mb, ceiling)
            self.request_stop()

    def _mark_pending(self) -> None:
        if not self._writes_pending():
            self._pending_since = time.monotonic()

    def _writes_pending(self) -> bool:
        """Whether acknowledges or events wait for the next round trip."""
        return bool(self._ops or self._pending_events)

    def _events_unwritten(self) -> bool:
        """Whether events wait for the stream (staged, or started events not written anywhere yet)."""
        return bool(self._unwritten or self._unwritten_starts)

    def _note_unwritten(self) -> None:
        if not self._events_unwritten():
            self._unwritten_since = time.monotonic()

    def _start_events(self, runs: Iterable[_Running]) -> list[EncodedEvent]:
        """The started events of ``runs``."""
        events = self._attempt_events
        if events is None:
            return []
        return [
            events.started(run.item.queue, run.item.payload, run.attempt, run.started_ms)  # type: ignore[arg-type]
            for run in runs
        ]

    def _update_busy(self) -> None:
        if not self._running:
            self._busy = BusyState(WorkerStatus.STOPPING if self._stop.is_set() else WorkerStatus.IDLE)
            return
        first = next(iter(self._running.values())).item.payload
        self._busy = BusyState(WorkerStatus.BUSY, first.id if first else None, first.name if first else None)

    # -- after a lost connection ----------------------------------------------------------------

    def _reconcile_safely(self) -> None:
        """Reconcile after a failed round trip; when Redis still fails, the next round trip reconciles first,
        so that writes which may have landed are never sent twice."""
        self._unreconciled = True
        try:
            self._reconcile()
        except redis.RedisError as exc:
            logger.debug("worker=%s cannot reconcile yet: %s", self.id, exc)

    def _reconcile(self) -> None:
        """Compare our processing lists with what we hold, after a round trip whose fate is unknown.

        A round trip that ran (it ran as one MULTI, whole or not at all) is forgotten, and one that
        did not is sent again with what came since. Entries nobody here holds came from a fetch
        whose reply was lost: adopt them. Then finish the jobs that waited for this answer.
        """
        pipe = self.client.pipeline(transaction=False)
        for name in self.options.queues:
            pipe.lrange(self.keyspace.processing(name, self.id), 0, -1)
        pipe.llen(self.keyspace.staged_events(self.id))
        *listed, staged = pipe.execute()
        present = {queue: Counter(entries) for queue, entries in zip(self.options.queues, listed)}
        held: dict[str, Counter[bytes]] = {queue: Counter() for queue in self.options.queues}
        deferred = [run.item for _, run, _, _ in self._deferred]
        for item in [*self._ready, *(run.item for run in self._running.values()), *deferred]:
            held[item.queue][item.raw] += 1
        batch = self._in_flight
        if batch is not None and self._has_landed(batch, present, held, staged):
            self._landed(batch)
        self._in_flight = None
        pending: dict[str, Counter[bytes]] = {queue: Counter() for queue in self.options.queues}
        for op in self._ops:
            pending[op.queue][op.raw] += 1
        for queue, counts in present.items():
            orphans = counts - held[queue] - pending[queue]
            for raw, copies in orphans.items():
                logger.warning("worker=%s adopts %d job(s) fetched before the connection dropped", self.id, copies)
                self._ready.extend(self._decode(queue, raw) for _ in range(copies))
        self._unreconciled = False
        finished, self._deferred = self._deferred, []
        for token, run, error, duration_ms in finished:
            self._finish(token, run, error, duration_ms)

    def _has_landed(
        self, batch: _Batch, present: dict[str, Counter[bytes]], held: dict[str, Counter[bytes]], staged: int
    ) -> bool:
        """Whether ``batch`` ran: its first acknowledgement is gone from our processing list, or else our
        staged events list has the length it leaves (:meth:`_queue_events` sees to it that one of the two
        tells)."""
        if batch.ops:
            marker = self._ops[0]
            return present[marker.queue][marker.raw] <= held[marker.queue][marker.raw]
        if batch.written:
            return staged == 0
        return bool(batch.events) and staged == batch.staged + 1
