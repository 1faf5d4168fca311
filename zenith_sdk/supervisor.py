"""Several processes of one command, kept running: ``zenith worker`` and ``zenith archive run`` with ``--processes N``.

A :class:`Supervisor` starts one child process per slot and watches them:

- a child that dies is started again; when it dies soon after it started (``quick_exit_s``) the
  next start waits, doubling from ``backoff_s`` up to ``max_backoff_s``;
- a child that exits with status 0 on its own (it chose to, e.g. to be recycled) is started again
  at once and counts as no failure;
- a child killed from outside (:data:`OUTSIDE_SIGNALS`: an operator's ``kill``, the OOM killer)
  after it was up is started again at once and counts as no failure either, however short its
  run: a fleet whose processes get killed is not an app that cannot run. A child is up once it
  called :func:`supervised_ready`, or once it has lived ``quick_exit_s``;
- a slot whose child dies quickly ``max_quick_exits`` times in a row (exiting with an error, by a
  signal of its own fault such as SIGSEGV, or killed before it was up), or a child that exits with
  a status that no restart can change (bad input, :data:`GIVE_UP_STATUSES`) on its first run,
  stops them all: :meth:`Supervisor.run` returns that child's status;
- :meth:`Supervisor.stop` (the CLI calls it on SIGTERM or Ctrl-C) sends SIGTERM to every child,
  waits up to ``grace_s`` for them to finish what they hold, then kills what is left.

Each child learns its slot from the environment variable :data:`SLOT_ENV` (0, 1, ...) and says
it is up through a pipe whose descriptor is in :data:`READY_FD_ENV` (:func:`supervised_ready`).
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "GIVE_UP_STATUSES",
    "OUTSIDE_SIGNALS",
    "READY_FD_ENV",
    "SLOT_ENV",
    "ChildExit",
    "Supervisor",
    "supervised_ready",
    "supervised_slot",
]

logger = logging.getLogger(__name__)

SLOT_ENV = "ZENITH_SUPERVISED_SLOT"
"""Set in each child's environment to its slot number; a command that sees it runs as one child."""
READY_FD_ENV = "ZENITH_SUPERVISED_READY_FD"
"""Set in each child's environment to the write end of a pipe: :func:`supervised_ready` writes to it."""
GIVE_UP_STATUSES = frozenset({2})
"""Exit statuses that mean bad input (the CLI's usage status): a first run ending so is not retried."""
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT})
"""Signals someone else sends (a person, an orchestrator, the OOM killer), unlike SIGSEGV or SIGABRT, which
a process brings on itself: a child they end after it was up is no sign of a crash loop."""
_POLL_S = 0.1


def supervised_slot() -> int | None:
    """This process's slot when a :class:`Supervisor` started it, else None."""
    value = os.environ.get(SLOT_ENV, "")
    return int(value) if value.isdigit() else None


def supervised_ready() -> bool:
    """Tell the :class:`Supervisor` that started this process that it is up; True when one was told.

    Call it once the program has got past what could keep it from running at all (imports,
    options, connections): from then on, being killed from outside no longer counts as a failure
    to start. Later calls, and calls in a process no supervisor started, do nothing.
    """
    value = os.environ.pop(READY_FD_ENV, "")  # once: and a grandchild must not write to the number
    if not value.isdigit():
        return False
    fd = int(value)
    try:
        # The descriptor must still be the supervisor's pipe, not a file that took its number.
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        os.write(fd, b"up\n")
        os.close(fd)
    except OSError:  # the supervisor is gone, or the descriptor was closed: nobody to tell
        return False
    return True


@dataclass(frozen=True)
class ChildExit:
    """A child that ended: its slot, process id, exit status (negative: the signal that ended it) and lifetime."""

    slot: int
    pid: int
    status: int
    lived_s: float
    restart_in_s: float | None = None
    """When another child takes its place (None: the supervisor gave up and stops them all)."""
    was_up: bool = False
    """Whether it had called :func:`supervised_ready` or lived ``quick_exit_s`` before it ended."""

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
    ready: bool = False
    ready_fd: int | None = None
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
    def children(self) -> dict[int, int]:
        """Slot to process id of the children started and not yet found ended (safe from another thread).

        Unlike :attr:`pids` it does not wait on the children, so it may name one that has just ended.
        """
        found: dict[int, int] = {}
        for slot in self._slots:
            process = slot.process  # read once: the supervisor's thread may clear it meanwhile
            if process is not None:
                found[slot.index] = process.pid
        return found

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
        read_fd, write_fd = os.pipe()
        env = {**os.environ, SLOT_ENV: str(slot.index), READY_FD_ENV: str(write_fd)}
        try:
            slot.process = subprocess.Popen(self.command, env=env, pass_fds=(write_fd,))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child holds it now: when the child ends, reading finds the end of the pipe
        os.set_blocking(read_fd, False)
        slot.ready_fd = read_fd
        slot.ready = False
        slot.started = time.monotonic()
        slot.runs += 1

    def _look_for_ready(self, slot: _Slot) -> None:
        """Note that ``slot``'s child said it is up; close the pipe once it has said so or ended."""
        if slot.ready_fd is None:
            return
        try:
            said = os.read(slot.ready_fd, 64)
        except BlockingIOError:  # nothing written yet, and the child still holds the pipe open
            return
        slot.ready = slot.ready or bool(said)
        os.close(slot.ready_fd)
        slot.ready_fd = None

    def _watch(self, slot: _Slot) -> int | None:
        """Restart ``slot``'s child if it ended (or it is due); returns a status when it is time to give up."""
        process = slot.process
        if process is None:
            if time.monotonic() >= slot.restart_at:
                self._start(slot)
            return None
        self._look_for_ready(slot)  # before poll(): a child that said so and then died was up
        status = process.poll()
        if status is None:
            return None
        self._look_for_ready(slot)
        lived = time.monotonic() - slot.started
        slot.process = None
        was_up = slot.ready or lived >= self.quick_exit_s
        given_up = self._count_exit(slot, status, lived, was_up=was_up)
        wait = 0.0 if slot.quick_exits == 0 else min(self.backoff_s * 2 ** (slot.quick_exits - 1), self.max_backoff_s)
        done = ChildExit(slot.index, process.pid, status, lived, None if given_up is not None else wait, was_up)
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

    def _count_exit(self, slot: _Slot, status: int, lived: float, *, was_up: bool) -> int | None:
        """Update ``slot``'s run of quick exits for a child that ended so; returns a status to give up with."""
        if status == 0 or (was_up and -status in OUTSIDE_SIGNALS):
            # It chose to end, or someone killed it once it was running: not a crash loop, and a
            # fresh one takes its place at once.
            slot.quick_exits = 0
            return None
        if status in GIVE_UP_STATUSES and slot.runs == 1:
            return status
        slot.quick_exits = slot.quick_exits + 1 if lived < self.quick_exit_s else 0
        if slot.quick_exits >= self.max_quick_exits:
            return status if status > 0 else 1
        return None

    def _stop_all(self) -> None:
        """SIGTERM to every child, then up to ``grace_s`` for them to end, then SIGKILL.

        A child killed so did not clean up after itself: ``on_exit`` hears of it, as of a death.
        """
        running: list[tuple[_Slot, subprocess.Popen[bytes]]] = []
        for slot in self._slots:
            if slot.process is not None and slot.process.poll() is None:
                running.append((slot, slot.process))
        for _, process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for slot, process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %d) did not stop within %.0f s; killed", self.name, process.pid, self.grace_s)
                process.kill()
                process.wait()
                lived = time.monotonic() - slot.started
                done = ChildExit(slot.index, process.pid, process.returncode, lived, None, slot.ready)
                slot.exits.append(done)
                if self.on_exit is not None:
                    self.on_exit(done)
        for slot in self._slots:
            slot.process = None
            if slot.ready_fd is not None:
                os.close(slot.ready_fd)
                slot.ready_fd = None
