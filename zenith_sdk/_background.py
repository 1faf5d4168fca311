"""A loop that runs a tick every interval and survives Redis outages: on a daemon thread, or in the caller's.

Redis errors are logged once when an outage starts and once when it ends; meanwhile the
tick is retried with exponential backoff. Nothing is ever raised into the host program.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

__all__ = ["BackgroundLoop"]

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 30.0
_FIRST_BACKOFF_S = 0.5


class BackgroundLoop:
    """Calls ``tick`` now and then every ``interval_s`` seconds until :meth:`stop` (or ``stop`` is set).

    :meth:`start` runs it on a daemon thread; :meth:`run` in the calling thread.
    """

    def __init__(
        self, name: str, interval_s: float, tick: Callable[[], object], *, stop: threading.Event | None = None
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.name = name
        self.interval_s = interval_s
        self._tick = tick
        self._stop = stop if stop is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self.failing = False

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = 5.0) -> None:
        """Ask the loop to finish; wait for its thread, if it has one, up to ``timeout_s``."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def run(self) -> None:
        """Tick in the calling thread until stopped; returns within one interval (or backoff) of the stop."""
        backoff = _FIRST_BACKOFF_S
        while not self._stop.is_set():
            if self._run_tick():
                backoff = _FIRST_BACKOFF_S
                self._stop.wait(self.interval_s)
            else:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _run_tick(self) -> bool:
        try:
            self._tick()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if not self.failing:
                logger.warning("%s: Redis unreachable (%s); retrying with backoff", self.name, exc)
            self.failing = True
            return False
        except Exception:
            # A bug or an unexpected reply must not kill a thread the host program relies on:
            # log it with its traceback and keep going.
            logger.exception("%s: tick failed; retrying", self.name)
            return False
        if self.failing:
            logger.warning("%s: Redis reachable again", self.name)
            self.failing = False
        return True
