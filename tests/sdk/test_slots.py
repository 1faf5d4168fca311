"""The worker's slot pool: the loop's wait for outcomes in the main thread, where signals arrive."""

from __future__ import annotations

import os
import signal
import threading

from zenith_sdk.worker._slots import SlotPool


def test_a_timed_wait_for_outcomes_returns_whatever_signals_arrive_meanwhile() -> None:
    # CPython 3.11's SimpleQueue.get(timeout=...) interrupted by a signal could block for good: a
    # worker sent SIGTERM during its 5 ms wait never stopped. Should the wait block, the per-test
    # timeout ends this test.
    pool = SlotPool(1, "signals")
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    stop = threading.Event()

    def pester() -> None:
        while not stop.is_set():
            os.kill(os.getpid(), signal.SIGUSR1)

    thread = threading.Thread(target=pester, daemon=True)
    thread.start()
    try:
        waits = [pool.collect(0.001) for _ in range(500)]
    finally:
        stop.set()
        thread.join(5)
        signal.signal(signal.SIGUSR1, previous)

    assert waits == [[]] * 500
    assert received  # the signals did arrive during the waits
