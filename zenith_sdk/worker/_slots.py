"""Slot threads: each runs one handler at a time and reports the outcome to the worker loop."""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from zenith_sdk.worker._app import Handler, JobContext

__all__ = ["Outcome", "SlotPool", "Task"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One job handed to a slot."""

    token: int
    handler: Handler
    context: JobContext


@dataclass(frozen=True)
class Outcome:
    """What happened to one task; ``error`` is ``None`` on success."""

    token: int
    error: BaseException | None
    duration_ms: float


class SlotPool:
    """``size`` threads taking tasks from one queue; a slot stuck past its deadline is replaced.

    Python cannot stop a thread, so a timed-out handler keeps running on its (abandoned)
    thread; its outcome is dropped and a fresh thread takes its place, so the worker keeps
    its concurrency.
    """

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self.tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self.outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        # The loop never blocks in SimpleQueue.get(timeout=...): it waits in the main thread, where
        # signal handlers run, and CPython 3.11's SimpleQueue.get interrupted by a signal can block
        # for good (a SIGTERM during a 5 ms wait left a worker hanging). It waits on this event
        # instead, which a slot sets after each outcome it puts.
        self._arrived = threading.Event()
        self._woken = False
        self._abandoned: set[int] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._spawned = 0

    def start(self) -> None:
        """Start the slot threads."""
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        self._spawned += 1
        thread = threading.Thread(target=self._run, name=f"{self.name}-slot-{self._spawned}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def submit(self, task: Task) -> None:
        """Hand a task to the next free slot."""
        self.tasks.put(task)

    def abandon(self, token: int) -> None:
        """Give up on a running task (timed out): its outcome is dropped and a new slot replaces it."""
        with self._lock:
            self._abandoned.add(token)
        self._spawn()

    def collect(self, block_s: float) -> list[Outcome]:
        """The outcomes ready now, after waiting up to ``block_s`` for the first (0: no wait).

        A :meth:`wake` since the last call, or during the wait, ends the wait at once.
        """
        # Cleared before the drain: an outcome put after it sets the event again, so the wait
        # below never sleeps through one; one put before it is drained now.
        self._arrived.clear()
        outcomes = self._drain()
        if not outcomes and block_s > 0 and not self._woken and self._arrived.wait(block_s):
            outcomes = self._drain()
        self._woken = False
        return outcomes

    def wake(self) -> None:
        """End the loop's current or next wait (from any thread): there may be a job to fetch."""
        self._woken = True
        self._arrived.set()

    def _drain(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            while True:
                outcomes.append(self.outcomes.get_nowait())
        except queue.Empty:
            return outcomes

    def stop(self) -> None:
        """Ask every slot to exit once its current task is done (does not wait)."""
        for _ in self._threads:
            self.tasks.put(None)

    def _run(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            outcome = _execute(task)
            with self._lock:
                abandoned = task.token in self._abandoned
                self._abandoned.discard(task.token)
            if abandoned:
                logger.warning("job=%s finished after its timeout; its result is dropped", task.context.id)
                return  # a replacement slot took this thread's place
            self.outcomes.put(outcome)
            self._arrived.set()


async def _awaited(awaitable: Awaitable[Any]) -> None:
    await awaitable


def _execute(task: Task) -> Outcome:
    started = time.perf_counter()
    try:
        result = task.handler.fn(task.context)
        if inspect.isawaitable(result):
            # An async handler (or any callable returning an awaitable): run to completion in an
            # event loop made for this job alone, on this slot's thread.
            asyncio.run(_awaited(result))
    except BaseException as exc:
        # The worker must survive whatever a handler raises (even SystemExit): it is recorded
        # as the job's error and retried or dead-lettered by the loop.
        return Outcome(task.token, exc, (time.perf_counter() - started) * 1000)
    return Outcome(task.token, None, (time.perf_counter() - started) * 1000)
