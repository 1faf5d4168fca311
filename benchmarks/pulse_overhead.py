"""How much CPU the System Pulse agent costs: microseconds per ``sample()`` and per ``beat()``.

Run against the Redis at ``$REDIS_URL`` (default ``redis://127.0.0.1:6379/0``)::

    .venv/bin/python benchmarks/pulse_overhead.py --iterations 2000

Keys are written under a unique prefix and deleted at the end. CPU figures are this process's
CPU time (``time.process_time``) and the calling thread's (``time.thread_time``); the Redis
server's own work is not counted. Wall time of ``beat()`` includes the network round trip.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from zenith_protocol import KeySpace, encode_pulse
from zenith_protocol.pulse import PULSE_INTERVAL_S
from zenith_sdk.connection import DEFAULT_REDIS_URL, connect
from zenith_sdk.pulse import Pulse


@dataclass(frozen=True)
class Figures:
    """Per-call averages of one measured operation, in microseconds."""

    name: str
    iterations: int
    process_cpu_us: float
    thread_cpu_us: float
    wall_us: float


def measure(name: str, call: Callable[[], object], iterations: int) -> Figures:
    """Run ``call`` ``iterations`` times (after a short warm-up) and average its cost."""
    for _ in range(min(50, iterations)):
        call()
    wall, process, thread = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(iterations):
        call()
    return Figures(
        name=name,
        iterations=iterations,
        process_cpu_us=(time.process_time() - process) / iterations * 1e6,
        thread_cpu_us=(time.thread_time() - thread) / iterations * 1e6,
        wall_us=(time.perf_counter() - wall) / iterations * 1e6,
    )


def run(url: str, iterations: int) -> list[Figures]:
    """Measure each step of a report, then a whole ``beat()`` against ``url``."""
    client = connect(url)
    tag = f"zenith-bench-{uuid.uuid4().hex[:8]}"
    space = KeySpace(pulse_prefix=f"{tag}:pulse:", legacy_pulse_prefix=f"{tag}:gravito:quasar:node:")
    pulse = Pulse("bench", client, keyspace=space)
    process = psutil.Process()
    try:
        client.ping()
        node = pulse.sample()
        return [
            measure("psutil.cpu_times()", psutil.cpu_times, iterations),
            measure("psutil.virtual_memory()", psutil.virtual_memory, iterations),
            measure("Process.cpu_percent(None)", lambda: process.cpu_percent(None), iterations),
            measure("Process.memory_info()", process.memory_info, iterations),
            measure("psutil.disk_usage('/')", lambda: psutil.disk_usage("/"), iterations),
            measure("encode_pulse(node)", lambda: encode_pulse(node), iterations),
            measure("Pulse.sample()", pulse.sample, iterations),
            measure("Pulse.beat() (sample + 2 SET EX)", pulse.beat, iterations),
        ]
    finally:
        pulse.stop()
        client.close()


def report(figures: list[Figures], url: str) -> None:
    """Print the table, and what one beat every default interval costs."""
    print(f"Pulse overhead: Python {platform.python_version()}, psutil {psutil.__version__}, Redis {url}")
    print(f"{'operation':<34}{'calls':>7}{'CPU us/call':>13}{'thread us':>11}{'wall us':>10}")
    for row in figures:
        print(
            f"{row.name:<34}{row.iterations:>7}{row.process_cpu_us:>13.1f}{row.thread_cpu_us:>11.1f}{row.wall_us:>10.1f}"
        )
    beat = figures[-1]
    share = beat.process_cpu_us / (PULSE_INTERVAL_S * 1e6) * 100
    print(
        f"One beat every {PULSE_INTERVAL_S} s costs {beat.process_cpu_us * 360 / 1000:.1f} ms of CPU per hour "
        f"({share:.5f}% of one core)."
    )


def main() -> None:
    """Parse the options, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=2000, help="calls per measured operation (default 2000)")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL), help="Redis URL")
    args = parser.parse_args()
    report(run(args.redis, args.iterations), args.redis)


if __name__ == "__main__":
    main()
