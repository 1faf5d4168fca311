"""The child processes of a pulse node made of several (a supervisor and its children), measured with psutil."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

import psutil

from zenith_protocol.pulse import PulseProcess, PulseProcessRole

__all__ = ["ChildMeter", "HostCallback", "percent"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class HostCallback(Generic[T]):
    """A callback of the host's code that each report calls: a bug there must not stop resource
    reports, so what it raises gives ``None``, logged once per streak of failures."""

    def __init__(self, fn: Callable[[], T], what: str) -> None:
        self._fn = fn
        self._what = what
        self._failing = False

    def __call__(self) -> T | None:
        try:
            value = self._fn()
        except Exception:
            if not self._failing:
                logger.exception("%s failed; reporting without it", self._what)
            self._failing = True
            return None
        self._failing = False
        return value


def percent(value: float) -> float:
    """``value`` clamped to 0-100 and rounded to one decimal place, as pulse CPU figures are written."""
    return round(min(max(value, 0.0), 100.0), 1)


class ChildMeter:
    """Resident memory and CPU share of each child that ``children`` names (slot to process id).

    A child's CPU figure covers the time since the previous reading; a child seen for the first
    time reports 0, since psutil has no earlier reading of it to compare with.
    """

    def __init__(self, children: Callable[[], Mapping[int, int]], cores: int, *, name: str) -> None:
        self._children = HostCallback(lambda: dict(children()), f"pulse {name}: children callback")
        self._cores = cores
        self._known: dict[int, psutil.Process] = {}

    def prime(self) -> None:
        """Start a new CPU measuring window for every child running now."""
        self._known = {}
        self.read()

    def read(self) -> list[PulseProcess]:
        """One report per child that is still running, by slot."""
        reports: list[PulseProcess] = []
        known: dict[int, psutil.Process] = {}
        for slot, pid in sorted((self._children() or {}).items()):
            process = self._known.get(pid)
            try:
                if process is None:
                    process = psutil.Process(pid)
                with process.oneshot():
                    # psutil reports a process against one core (up to cores x 100); the wire wants 0-100.
                    cpu = percent(process.cpu_percent(interval=None) / self._cores)
                    rss = process.memory_info().rss
            except psutil.Error:  # it ended since it was listed: the next report lists its successor
                continue
            known[pid] = process
            reports.append(PulseProcess(pid=pid, role=PulseProcessRole.CHILD, slot=slot, rss=rss, cpu=cpu))
        self._known = known
        return reports
