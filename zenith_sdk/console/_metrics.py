"""``/metrics``: the console's Prometheus exposition, one snapshot of Redis per scrape.

Counters come from the per-queue counters hashes the writers keep (PROTOCOL 6.6), so every
console replica reports the same values and trimming the dead-letter list never lowers them.
Each app has a registry of its own (never the process-wide one), so two consoles in one
process do not clash. When Redis cannot be read the scrape still answers, with
``zenith_redis_up 0`` alone. Labels per worker and per job name are only added with
``metrics_detailed_labels`` (their series grow with the fleet and the code base).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator

import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from zenith_protocol import AlertStatus
from zenith_sdk.console._metrics_read import ARCHIVE_GROUP, MetricsReader, Snapshot, missed_runs
from zenith_sdk.console._state import ConsoleState
from zenith_sdk.overview import overview

__all__ = ["ZenithCollector", "metrics_endpoint"]

logger = logging.getLogger(__name__)

_STATES = ("waiting", "delayed", "active", "grouped", "failed")


def _s(ms: float | None) -> float:
    return math.nan if ms is None else ms / 1000


class ZenithCollector(Collector):
    """A prometheus_client collector over one console's Redis."""

    def __init__(self, state: ConsoleState, *, detailed: bool = False) -> None:
        self.state = state
        self.detailed = detailed
        self.reader = MetricsReader(state.client, state.keyspace)

    def collect(self) -> Iterator[Metric]:
        """The families of one snapshot, or ``zenith_redis_up 0`` when Redis cannot be read."""
        up = GaugeMetricFamily("zenith_redis_up", "1 when the console could read Redis for this scrape, else 0")
        try:
            # Read now, not the browsers' shared overview: every part of the scrape is of one moment.
            snapshot = self.reader.read(overview(self.state.client, keyspace=self.state.keyspace))
        except redis.RedisError as exc:
            logger.warning("metrics: Redis at %s is not readable: %s", self.state.redis_location, exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for part in (_queues, _counters, _fleet, _nodes, _schedules, _alerts, _archive):
            yield from part(snapshot)
        if self.detailed:
            yield from _detailed(snapshot)


def _queues(snap: Snapshot) -> Iterator[Metric]:
    jobs = GaugeMetricFamily("zenith_queue_jobs", "Jobs in a queue, by state", labels=["queue", "state"])
    paused = GaugeMetricFamily("zenith_queue_paused", "1 while the whole queue is paused", labels=["queue"])
    oldest = GaugeMetricFamily(
        "zenith_queue_oldest_waiting_age_seconds",
        "Age (since it was created) of the oldest job waiting in any lane of the queue; 0 when none waits",
        labels=["queue"],
    )
    for queue in snap.queues:
        for state in _STATES:
            jobs.add_metric([queue.name, state], getattr(queue, state))
        paused.add_metric([queue.name], int(queue.paused))
        created = snap.oldest_ms.get(queue.name)
        oldest.add_metric([queue.name], max(0.0, _s(snap.taken_ms - created)) if created is not None else 0.0)
    yield from (jobs, paused, oldest)


def _counters(snap: Snapshot) -> Iterator[Metric]:
    labels = ["queue"]
    processed = CounterMetricFamily(
        "zenith_jobs_processed", "Attempts that ended (completed or failed), since the queue's first", labels=labels
    )
    completed = CounterMetricFamily("zenith_jobs_completed", "Attempts that completed", labels=labels)
    failed = CounterMetricFamily("zenith_jobs_failed", "Attempts that failed (retried or not)", labels=labels)
    dead = CounterMetricFamily("zenith_jobs_dead_lettered", "Jobs moved to the dead-letter list", labels=labels)
    duration = HistogramMetricFamily(
        "zenith_job_duration_seconds", "How long handlers ran, per attempt (completed or failed)", labels=labels
    )
    for queue, counts in sorted(snap.counters.items()):
        processed.add_metric([queue], counts.completed + counts.failed)
        completed.add_metric([queue], counts.completed)
        failed.add_metric([queue], counts.failed)
        dead.add_metric([queue], counts.dead_lettered)
        buckets = [("+Inf" if math.isinf(bound) else f"{bound:g}", count) for bound, count in counts.buckets]
        duration.add_metric([queue], buckets, counts.duration_sum_ms / 1000)
    yield from (processed, completed, failed, dead, duration)


def _fleet(snap: Snapshot) -> Iterator[Metric]:
    workers = GaugeMetricFamily("zenith_workers", "Workers by liveness (alive: a fresh heartbeat)", labels=["state"])
    workers.add_metric(["alive"], snap.overview.workers)
    workers.add_metric(["stale"], snap.overview.workers_stale)
    per_queue = GaugeMetricFamily("zenith_queue_workers", "Live workers that fetch from the queue", labels=["queue"])
    counts = {queue.name: 0 for queue in snap.queues}
    for worker in snap.workers:
        if worker.stale is None:
            for queue in worker.queues:
                counts[queue] = counts.get(queue, 0) + 1
    for queue, count in sorted(counts.items()):
        per_queue.add_metric([queue], count)
    nodes = GaugeMetricFamily("zenith_nodes", "Pulse nodes by liveness (stale: no report for 60 s)", labels=["state"])
    nodes.add_metric(["alive"], snap.overview.nodes)
    nodes.add_metric(["stale"], snap.overview.nodes_stale)
    yield from (workers, per_queue, nodes)


def _gauges(names: dict[str, str], labels: list[str]) -> dict[str, GaugeMetricFamily]:
    return {name: GaugeMetricFamily(name, doc, labels=labels) for name, doc in names.items()}


def _nodes(snap: Snapshot) -> Iterator[Metric]:
    labels = ["service", "node"]
    g = _gauges(
        {
            "zenith_node_up": "1 while the node reports (a report under 60 s old), else 0",
            "zenith_node_cpu_system_ratio": "Machine CPU in use, 0 to 1",
            "zenith_node_cpu_process_ratio": "CPU the node's process uses, 0 to 1 per core",
            "zenith_node_memory_total_bytes": "Machine memory",
            "zenith_node_memory_used_bytes": "Machine memory in use",
            "zenith_node_process_resident_memory_bytes": "Resident memory of the node's process",
        },
        labels,
    )
    disk = _gauges(
        {
            "zenith_node_disk_total_bytes": "Size of a disk the node reports",
            "zenith_node_disk_used_bytes": "Space used on the disk",
            "zenith_node_disk_free_bytes": "Space free on the disk",
        },
        [*labels, "path"],
    )
    for entry in snap.nodes:
        key = [entry.service, entry.node_id]
        g["zenith_node_up"].add_metric(key, 0 if entry.stale or entry.node is None else 1)
        node = entry.node
        if node is None:
            continue
        g["zenith_node_cpu_system_ratio"].add_metric(key, node.cpu.system / 100)
        g["zenith_node_cpu_process_ratio"].add_metric(key, node.cpu.process / 100)
        g["zenith_node_memory_total_bytes"].add_metric(key, node.memory.system.total)
        g["zenith_node_memory_used_bytes"].add_metric(key, node.memory.system.used)
        g["zenith_node_process_resident_memory_bytes"].add_metric(key, node.memory.process.rss)
        for usage in node.disk or []:
            disk["zenith_node_disk_total_bytes"].add_metric([*key, usage.path], usage.total)
            disk["zenith_node_disk_used_bytes"].add_metric([*key, usage.path], usage.used)
            disk["zenith_node_disk_free_bytes"].add_metric([*key, usage.path], usage.free)
    yield from g.values()
    yield from disk.values()


def _schedules(snap: Snapshot) -> Iterator[Metric]:
    g = _gauges(
        {
            "zenith_schedule_enabled": "1 while the schedule is enabled, 0 while paused",
            "zenith_schedule_last_run_timestamp_seconds": "When the schedule last fired (epoch seconds)",
            "zenith_schedule_next_run_timestamp_seconds": "When the schedule fires next (epoch seconds)",
            "zenith_schedule_missed_runs": "Runs due over a minute ago that no ticker fired yet (at most 100)",
        },
        ["schedule", "queue"],
    )
    for schedule in snap.schedules:
        key = [schedule.id, schedule.queue]
        g["zenith_schedule_enabled"].add_metric(key, int(schedule.enabled))
        if schedule.last_run_ms is not None:
            g["zenith_schedule_last_run_timestamp_seconds"].add_metric(key, _s(schedule.last_run_ms))
        if schedule.next_run_ms is not None:
            g["zenith_schedule_next_run_timestamp_seconds"].add_metric(key, _s(schedule.next_run_ms))
        g["zenith_schedule_missed_runs"].add_metric(key, missed_runs(schedule, snap.taken_ms))
    yield from g.values()


def _alerts(snap: Snapshot) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "zenith_alert_state",
        "1 for the state each (rule, subject) is in, 0 for the others",
        labels=["rule", "subject", "state"],
    )
    for (rule_id, subject), alert in sorted(snap.alerts.items()):
        for status in AlertStatus:
            state.add_metric([rule_id, subject, status.value], int(alert.state is status))
    firing = GaugeMetricFamily("zenith_alerts_firing", "Alerts firing now (silenced ones included)")
    firing.add_metric([], len(snap.overview.firing))
    g = _gauges(
        {
            "zenith_notification_channel_consecutive_failures": "Deliveries to the channel that failed in a row",
            "zenith_notification_last_success_timestamp_seconds": "Last delivery that reached the channel",
            "zenith_notification_last_attempt_timestamp_seconds": "Last delivery attempted to the channel",
        },
        ["channel"],
    )
    for name, health in sorted(snap.channels.items()):
        g["zenith_notification_channel_consecutive_failures"].add_metric([name], health.consecutive_failures)
        if health.last_success_ms is not None:
            g["zenith_notification_last_success_timestamp_seconds"].add_metric([name], _s(health.last_success_ms))
        if health.last_attempt_ms is not None:
            g["zenith_notification_last_attempt_timestamp_seconds"].add_metric([name], _s(health.last_attempt_ms))
    yield from (state, firing, *g.values())


def _archive(snap: Snapshot) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "zenith_events_consumer_lag_events",
        "Events in the stream not yet delivered to the consumer group (the archive's group is 'archive')",
        labels=["group"],
    )
    pending = GaugeMetricFamily(
        "zenith_events_consumer_pending_events",
        "Events delivered to the group and not yet acknowledged",
        labels=["group"],
    )
    archive = GaugeMetricFamily("zenith_archive_lag_events", "Events the SQL archive has not yet committed")
    for group in snap.groups:
        if group.lag is not None:
            lag.add_metric([group.name], group.lag)
        pending.add_metric([group.name], group.pending)
        if group.name == ARCHIVE_GROUP and group.lag is not None:
            archive.add_metric([], group.lag + group.pending)
    yield from (lag, pending, archive)


def _detailed(snap: Snapshot) -> Iterator[Metric]:
    labels = ["queue", "job_name"]
    completed = CounterMetricFamily("zenith_job_name_completed", "Attempts that completed, per job name", labels=labels)
    failed = CounterMetricFamily(
        "zenith_job_name_failed", "Attempts that failed in their handler, per job name", labels=labels
    )
    for queue, counts in sorted(snap.counters.items()):
        for job, fields in sorted(counts.by_job.items()):
            completed.add_metric([queue, job], fields.get("completed", 0))
            failed.add_metric([queue, job], fields.get("failed", 0))
    up = GaugeMetricFamily("zenith_worker_up", "1 while the worker's heartbeat is fresh, else 0", labels=["worker"])
    busy = GaugeMetricFamily("zenith_worker_busy", "1 while the worker runs a job", labels=["worker"])
    for worker in snap.workers:
        up.add_metric([worker.id], int(worker.stale is None))
        busy.add_metric([worker.id], int(worker.status == "busy"))
    yield from (completed, failed, up, busy)


def metrics_endpoint(state: ConsoleState) -> Callable[[Request], Response]:
    """The ``/metrics`` endpoint of one console, with a registry of its own."""
    registry = CollectorRegistry()
    registry.register(ZenithCollector(state, detailed=state.settings.metrics_detailed_labels))

    def metrics(_request: Request) -> Response:
        """Prometheus text exposition of one snapshot (sync: Starlette runs it in its threadpool)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
