"""Several processes of one command, kept running: ``zenith archive run --processes N`` uses it.

A :class:`Supervisor` starts one child process per slot and watches them:

- a child that dies is started again; when it dies soon after it started (``quick_exit_s``) the
  next start waits, doubling from ``backoff_s`` up to ``max_backoff_s``;
- a child that exits with status 0 on its own (it chose to, e.g. to be recycled) is started again
  at once and counts as no failure;
- a slot whose child dies quickly ``max_quick_exits`` times in a row, or a child that exits with
  a status that no restart can change (bad input, :data:`GIVE_UP_STATUSES`) on its first run,
  stops them all: :meth:`Supervisor.run` returns that child's status;
- :meth:`Supervisor.stop` (the CLI calls it on SIGTERM or Ctrl-C) sends SIGTERM to every child,
  waits up to ``grace_s`` for them to finish what they hold, then kills what is left.

Each child learns its slot from the environment variable :data:`SLOT_ENV` (0, 1, ...).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["GIVE_UP_STATUSES", "SLOT_ENV", "ChildExit", "Supervisor", "supervised_slot"]

logger = logging.getLogger(__name__)

SLOT_ENV = "ZENITH_SUPERVISED_SLOT"
"""Set in each child's environment to its slot number; a command that sees it runs as one child."""
GIVE_UP_STATUSES = frozenset({2})
"""Exit statuses that mean bad input (the CLI's usage status): a first run ending so is not retried."""
_POLL_S = 0.1


def supervised_slot() -> int | None:
    """This process's slot when a :class:`Supervisor` started it, else None."""
    value = os.environ.get(SLOT_ENV, "")
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class ChildExit:
    """A child that ended: its slot, process id, exit status (negative: the signal that ended it) and lifetime."""

    slot: int
    pid: int
    status: int
    lived_s: float
    restart_in_s: float | None = None
    """When another child takes its place (None: the supervisor gave up and stops them all)."""

    @property
    def how(self) -> str:
        """``"status 3"`` or ``"signal 9"``."""
        return f"status {self.status}" if self.status >= 0 else f"signal {-self.status}"


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    runs: int = 0
    quick_exits: int = 0
    restart_at: float = 0.0
    exits: list[ChildExit] = field(default_factory=list)


class Supervisor:
    """Runs ``processes`` children of ``command`` until :meth:`stop`; see the module docstring.

    Args:
        command: the child's argv (the same for every slot; the slot is in :data:`SLOT_ENV`).
        processes: how many children run at once.
        name: how messages name the children (``"archiver"``).
        on_exit: called with each :class:`ChildExit`, in the supervisor's thread.
        stop: an event that, once set, stops it as :meth:`stop` does (e.g. the CLI's signal event).
    """

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        *,
        name: str = "child",
        quick_exit_s: float = 5.0,
        max_quick_exits: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        grace_s: float = 30.0,
        on_exit: Callable[[ChildExit], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        if not command:
            raise ValueError("command must name a program")
        self.command = list(command)
        self.name = name
        self.quick_exit_s = quick_exit_s
        self.max_quick_exits = max_quick_exits
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.grace_s = grace_s
        self.on_exit = on_exit
        self._slots = [_Slot(index) for index in range(processes)]
        self._stop = stop if stop is not None else threading.Event()

    @property
    def pids(self) -> list[int]:
        """The process ids of the children running now."""
        return [slot.process.pid for slot in self._slots if slot.process is not None and slot.process.poll() is None]

    @property
    def exits(self) -> list[ChildExit]:
        """Every child exit so far, slot by slot."""
        return [done for slot in self._slots for done in slot.exits]

    def stop(self) -> None:
        """Ask :meth:`run` to stop every child and return (safe from a signal handler or another thread)."""
        self._stop.set()

    def run(self) -> int:
        """Start the children and keep them running until :meth:`stop`; returns 0, or the status it gave up on."""
        given_up: int | None = None
        try:
            for slot in self._slots:
                self._start(slot)
            while given_up is None and not self._stop.wait(_POLL_S):
                for slot in self._slots:
                    given_up = self._watch(slot)
                    if given_up is not None:
                        break
        finally:
            self._stop_all()
        return given_up or 0

    def _start(self, slot: _Slot) -> None:
        env = {**os.environ, SLOT_ENV: str(slot.index)}
        slot.process = subprocess.Popen(self.command, env=env)
        slot.started = time.monotonic()
        slot.runs += 1

    def _watch(self, slot: _Slot) -> int | None:
        """Restart ``slot``'s child if it ended (or it is due); returns a status when it is time to give up."""
        process = slot.process
        if process is None:
            if time.monotonic() >= slot.restart_at:
                self._start(slot)
            return None
        status = process.poll()
        if status is None:
            return None
        lived = time.monotonic() - slot.started
        slot.process = None
        given_up: int | None = None
        if status == 0:  # it chose to end: a fresh one takes its place at once
            slot.quick_exits = 0
        elif status in GIVE_UP_STATUSES and slot.runs == 1:
            given_up = status
        else:
            slot.quick_exits = slot.quick_exits + 1 if lived < self.quick_exit_s else 0
            if slot.quick_exits >= self.max_quick_exits:
                given_up = status if status > 0 else 1
        wait = 0.0 if slot.quick_exits == 0 else min(self.backoff_s * 2 ** (slot.quick_exits - 1), self.max_backoff_s)
        done = ChildExit(slot.index, process.pid, status, lived, None if given_up is not None else wait)
        slot.exits.append(done)
        if self.on_exit is not None:
            self.on_exit(done)
        if given_up is not None:
            why = "at its first run" if slot.runs == 1 else f"{slot.quick_exits} times within {self.quick_exit_s:.0f} s"
            logger.error("%s %d ended with %s %s; stopping them all", self.name, slot.index, done.how, why)
            return given_up
        logger.info("%s %d (pid %d) ended with %s; another in %.1f s", self.name, slot.index, done.pid, done.how, wait)
        slot.restart_at = time.monotonic() + wait
        return None

    def _stop_all(self) -> None:
        """SIGTERM to every child, then up to ``grace_s`` for them to end, then SIGKILL."""
        running = [slot.process for slot in self._slots if slot.process is not None and slot.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %d) did not stop within %.0f s; killed", self.name, process.pid, self.grace_s)
                process.kill()
                process.wait()
        for slot in self._slots:
            slot.process = None
