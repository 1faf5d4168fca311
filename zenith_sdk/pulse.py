"""System Pulse: a daemon thread that reports this process's and this machine's resources to Redis.

Every ``interval_s`` the agent samples CPU, memory, disk and load average with psutil and writes one
:class:`~zenith_protocol.PulseNode` with ``SET ... EX ttl_s`` under both key forms by default:
``pulse:<service>:<nodeId>`` and the Node agent's ``gravito:quasar:node:<service>:<nodeId>``, which
the Node console reads (one pipeline, one round trip). Readers merge the two forms. The consoles
list the nodes whose keys exist, so a process that dies without calling :meth:`Pulse.stop`
disappears when its keys expire. A program made of several processes (a supervisor and its
children) is one node: the supervisor passes ``children``, and its report lists every process
under ``processes`` and counts them all in ``cpu.process`` and ``memory.process.rss``.

Redis outages never reach the host program: the thread logs once when an outage starts and once
when it ends, and retries with backoff (:class:`~zenith_sdk._background.BackgroundLoop`).
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import psutil
import redis

from zenith_protocol import KeySpace, PulseKeyForm, encode_pulse
from zenith_protocol.pulse import (
    PULSE_INTERVAL_S,
    PULSE_TTL_S,
    DiskUsage,
    Language,
    PulseCpu,
    PulseMemory,
    PulseNode,
    PulseProcess,
    PulseProcessMemory,
    PulseProcessRole,
    PulseQueue,
    PulseRuntime,
    PulseSystemMemory,
)
from zenith_sdk._background import BackgroundLoop
from zenith_sdk._pulse_children import ChildMeter, HostCallback, percent
from zenith_sdk.connection import connect

__all__ = ["CPU_WARMUP_S", "Pulse"]

logger = logging.getLogger(__name__)

CPU_WARMUP_S = 0.2
"""Shortest CPU measuring window the first report waits for after :meth:`Pulse.start` primes the meters."""

_STOP_TIMEOUT_S = 5.0


def _busy_and_total(times: Any) -> tuple[float, float]:
    """Busy and total CPU seconds of a ``psutil.cpu_times()`` tuple, counted as psutil counts them."""
    # Linux counts guest time inside user/nice as well; subtract it so it is not counted twice.
    total = float(sum(times)) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = float(times.idle) + getattr(times, "iowait", 0.0)
    return total - idle, total


class _CpuMeter:
    """Non-blocking CPU percentages (machine and process) over the window since the previous reading.

    The machine figure is computed from ``psutil.cpu_times()`` deltas kept on this object, not with
    ``psutil.cpu_percent(interval=None)``: psutil keys that function's state by calling thread (and
    shares it with anything else in the host that calls it), so priming it in :meth:`Pulse.start`
    would not prime the background thread.
    """

    def __init__(self, process: psutil.Process, cores: int) -> None:
        self._process = process
        self._cores = cores
        self._lock = threading.Lock()
        self._last = _busy_and_total(psutil.cpu_times())
        self._system = 0.0
        self.primed_at = 0.0
        self.prime()

    def prime(self) -> None:
        """Start a new measuring window now."""
        with self._lock:
            self._last = _busy_and_total(psutil.cpu_times())
            self._process.cpu_percent(interval=None)
            self.primed_at = time.monotonic()

    def read(self) -> tuple[float, float]:
        """Machine and process CPU percent (0-100) since the previous reading."""
        with self._lock:
            busy, total = _busy_and_total(psutil.cpu_times())
            last_busy, last_total = self._last
            # The kernel counts CPU time in clock ticks; when none elapsed, keep the window open
            # and report the previous figure instead of a meaningless 0.
            if total > last_total:
                self._system = percent((busy - last_busy) / (total - last_total) * 100)
                self._last = (busy, total)
            # psutil reports the process against one core (up to cores x 100); the wire wants 0-100.
            process = percent(self._process.cpu_percent(interval=None) / self._cores)
        return self._system, process


def _check_arguments(service: str, node_id: str, interval_s: float, ttl_s: int, disk_paths: Sequence[str]) -> None:
    if not isinstance(service, str) or not service.strip():
        raise ValueError(f"service must be a non-empty name such as 'billing-api', got {service!r}")
    if ":" in service:
        raise ValueError(f"service {service!r} contains ':', which splits pulse keys; use '-' or '.' instead")
    if not isinstance(node_id, str) or not node_id.strip():
        raise ValueError("node_id must not be empty; leave it out to use '{hostname}-{pid}'")
    if not interval_s > 0:
        raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s!r}")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s <= interval_s:
        raise ValueError(
            f"ttl_s must be a whole number of seconds greater than interval_s={interval_s}, got {ttl_s!r}; "
            f"use about three intervals (the default is {PULSE_TTL_S} s for {PULSE_INTERVAL_S} s)"
        )
    if isinstance(disk_paths, str):
        raise TypeError(f"disk_paths must be a sequence of paths, e.g. [{disk_paths!r}], not a single string")


class Pulse:
    """Reports CPU, memory, disk and load of this process and machine to Redis every ``interval_s``.

    Args:
        service: name the console groups nodes by (no ``:``).
        client: a redis-py client, a Redis URL, or ``None`` for the default URL. A client this
            object builds from a URL is closed by :meth:`stop`.
        keyspace: key prefixes; the defaults write ``pulse:{service}:{node_id}`` and
            ``gravito:quasar:node:{service}:{node_id}``.
        key_form: which of those two keys to write (both by default, so the Node console shows
            this node too); ``PulseKeyForm.PULSE`` or ``PulseKeyForm.LEGACY`` writes one.
        node_id: this node's id; default ``{hostname}-{pid}``.
        interval_s: seconds between reports.
        ttl_s: lifetime of the keys in whole seconds; must exceed ``interval_s``.
        disk_paths: filesystems to report; a path that does not exist is skipped (logged once).
        framework: free text shown as ``runtime.framework`` (``"django"``, ``"celery"``, ...).
        version: version shown for the node; default the Python version.
        meta: extra JSON-serialisable fields written as ``meta``.
        queues: called at each report for the queues this node serves; exceptions are logged and skipped.
        children: called at each report for the child processes this one supervises (slot to process
            id); the report lists them all under ``processes`` and counts them in its totals.

    Raises:
        ValueError: an argument cannot work; the message says what to pass instead.
        TypeError: ``disk_paths`` is a single string rather than a sequence of paths.
        zenith_protocol.ConfigError: ``client`` is a URL that cannot work.
    """

    def __init__(
        self,
        service: str,
        client: redis.Redis | str | None = None,
        *,
        keyspace: KeySpace | None = None,
        node_id: str | None = None,
        interval_s: float = PULSE_INTERVAL_S,
        ttl_s: int = PULSE_TTL_S,
        disk_paths: Sequence[str] = ("/",),
        framework: str | None = None,
        version: str | None = None,
        meta: dict[str, Any] | None = None,
        queues: Callable[[], list[PulseQueue]] | None = None,
        key_form: PulseKeyForm = PulseKeyForm.BOTH,
        children: Callable[[], Mapping[int, int]] | None = None,
    ) -> None:
        self._hostname = socket.gethostname()
        self._process = psutil.Process()
        self._pid = self._process.pid
        node_id = f"{self._hostname}-{self._pid}" if node_id is None else node_id
        _check_arguments(service, node_id, interval_s, ttl_s, disk_paths)
        self.key_form = _key_form(key_form)
        self.service = service
        self.node_id = node_id
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self.disk_paths: tuple[str, ...] = tuple(dict.fromkeys(disk_paths))
        self.keys = (keyspace or KeySpace()).pulse_keys(service, node_id, self.key_form)
        """Every key this node is written under (one, or two: see ``key_form``)."""
        self.key = self.keys[0]
        """The first of :attr:`keys`: the one log lines name."""
        self._client = connect(client)
        self._owns_client = not isinstance(client, redis.Redis)
        self._framework = framework
        self._version = platform.python_version() if version is None else version
        self._meta = dict(meta) if meta is not None else None
        self._queues = (
            None if queues is None else HostCallback(lambda: list(queues()), f"pulse key={self.key}: queues callback")
        )
        self._missing_paths: set[str] = set()
        self._cores = psutil.cpu_count() or os.cpu_count() or 1
        self._started_at = self._process.create_time()
        self._cpu = _CpuMeter(self._process, self._cores)
        self._children = None if children is None else ChildMeter(children, self._cores, name=f"key={self.key}")
        self._stopping = threading.Event()
        # Held while a report is written, so stop() cannot delete the key and then see the thread
        # write it again.
        self._write_lock = threading.Lock()
        self._loop = BackgroundLoop(f"zenith-pulse service={service} node={node_id}", interval_s, self._tick)

    @property
    def running(self) -> bool:
        """True while the reporting thread is alive."""
        return self._loop.running

    def __repr__(self) -> str:
        return f"Pulse(keys={self.keys!r}, interval_s={self.interval_s}, running={self.running})"

    def start(self) -> None:
        """Start reporting on a daemon thread (no-op when already running); never raises on Redis errors."""
        if self.running:
            return
        self._stopping.clear()
        self._cpu.prime()
        if self._children is not None:
            self._children.prime()
        self._loop.start()

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> None:
        """Stop the thread and delete this node's keys (one command); never raises.

        When Redis is unreachable the keys are left to expire within ``ttl_s``.
        """
        self._stopping.set()
        try:
            self._loop.stop(timeout_s)
            locked = self._write_lock.acquire(timeout=timeout_s)
            try:
                self._delete_key()
            finally:
                if locked:
                    self._write_lock.release()
            if self._owns_client:
                self._client.close()
        except Exception:
            # stop() runs in shutdown paths (finally blocks, signal handlers) that must not fail:
            # log the bug and carry on; the key expires by itself.
            logger.exception("pulse key=%s: stopping failed", self.key)

    def _delete_key(self) -> None:
        if self._loop.failing:
            logger.debug("pulse key=%s: Redis unreachable, key left to expire in %s s", self.key, self.ttl_s)
            return
        try:
            self._client.delete(*self.keys)
        except redis.RedisError as exc:
            logger.warning("pulse key=%s not deleted (%s); it expires within %s s", self.key, exc, self.ttl_s)

    def __enter__(self) -> Pulse:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def sample(self) -> PulseNode:
        """Measure now and return the report, without talking to Redis.

        CPU percentages cover the time since the previous sample (or since :meth:`start`). With
        ``children``, ``cpu.process`` and ``memory.process.rss`` are the sums over this process
        and every child, each listed under ``processes``.
        """
        system_cpu, process_cpu = self._cpu.read()
        rss = self._process.memory_info().rss
        processes = None
        if self._children is not None:
            own = PulseProcess(pid=self._pid, role=PulseProcessRole.SUPERVISOR, rss=rss, cpu=process_cpu)
            processes = [own, *self._children.read()]
            process_cpu = percent(sum(process.cpu or 0.0 for process in processes))
            rss = sum(process.rss for process in processes)
        memory = psutil.virtual_memory()
        # "free" is what the OS can hand out without swapping (MemAvailable), as Node's os.freemem()
        # reports it, so free + used == total.
        free = min(int(memory.available), int(memory.total))
        return PulseNode(
            id=self.node_id,
            service=self.service,
            language=Language.PYTHON,
            version=self._version,
            pid=self._pid,
            hostname=self._hostname,
            platform=sys.platform,
            cpu=PulseCpu(system=system_cpu, process=process_cpu, cores=self._cores),
            memory=PulseMemory(
                system=PulseSystemMemory(total=memory.total, free=free, used=memory.total - free),
                process=PulseProcessMemory(rss=rss),
            ),
            runtime=PulseRuntime(
                uptime_s=round(max(time.time() - self._started_at, 0.0), 3), framework=self._framework
            ),
            queues=self._sample_queues(),
            meta=self._meta,
            timestamp=int(time.time() * 1000),
            disk=self._sample_disks(),
            load_avg=_load_average(),
            processes=processes,
        )

    def beat(self) -> PulseNode:
        """Sample and write the report with ``SET key EX ttl_s`` for each of :attr:`keys`; returns what was written.

        The writes travel in one pipeline: one round trip, whatever the number of keys.

        Raises:
            redis.RedisError: Redis refused or could not be reached.
        """
        node = self.sample()
        payload = encode_pulse(node)
        # Independent writes of the same bytes: a plain pipeline, no transaction (STYLE 10).
        pipe = self._client.pipeline(transaction=False)
        for key in self.keys:
            pipe.set(key, payload, ex=self.ttl_s)
        pipe.execute()
        return node

    def _tick(self) -> None:
        # The first report after start() waits for a CPU window long enough to mean something.
        warmup_left = self._cpu.primed_at + CPU_WARMUP_S - time.monotonic()
        if warmup_left > 0:
            self._stopping.wait(warmup_left)
        with self._write_lock:
            if not self._stopping.is_set():
                self.beat()

    def _sample_disks(self) -> list[DiskUsage] | None:
        disks: list[DiskUsage] = []
        for path in self.disk_paths:
            try:
                usage = psutil.disk_usage(path)
            except OSError as exc:
                if path not in self._missing_paths:
                    self._missing_paths.add(path)
                    logger.warning("pulse key=%s: disk path=%s skipped: %s", self.key, path, exc)
                continue
            self._missing_paths.discard(path)
            disks.append(
                DiskUsage(path=path, total=usage.total, used=usage.used, free=usage.free, percent=usage.percent)
            )
        return disks or None

    def _sample_queues(self) -> list[PulseQueue] | None:
        return (self._queues() or None) if self._queues is not None else None


def _key_form(value: PulseKeyForm | str) -> PulseKeyForm:
    try:
        return PulseKeyForm(value)
    except ValueError:
        allowed = ", ".join(repr(form.value) for form in PulseKeyForm)
        raise ValueError(f"key_form must be one of {allowed}, got {value!r}") from None


def _load_average() -> list[float] | None:
    getloadavg = getattr(os, "getloadavg", None)
    if getloadavg is None:  # pragma: no cover - Windows has no load average
        return None
    try:
        return [round(value, 2) for value in getloadavg()]
    except OSError:  # pragma: no cover - the platform could not tell
        return None
