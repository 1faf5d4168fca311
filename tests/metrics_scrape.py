"""Scraping a console's ``/metrics`` and filling a Redis with everything it reports on."""

from __future__ import annotations

import time

import redis
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from wire_data import node_agent_pulse, node_job
from worker_fixtures import StartWorker
from worker_helpers import idle, wait_for

from zenith_protocol import AlertState, AlertStatus, KeySpace, encode_alert_state
from zenith_protocol.counters import QueueCounters
from zenith_sdk.alerts import record_delivery
from zenith_sdk.alerts.store import state_field
from zenith_sdk.producer import Producer
from zenith_sdk.pulse import Pulse
from zenith_sdk.schedules import Scheduler
from zenith_sdk.worker import App, JobContext

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, path: str = "/metrics") -> Samples:
    """Every sample of one scrape, by name and sorted labels."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of one sample (KeyError when the scrape does not have it)."""
    return samples[(name, tuple(sorted(labels.items())))]


def seed_everything_else(r: redis.Redis, space: KeySpace) -> None:
    """What the workers do not write: Node-shaped jobs and pulse, a real pulse node with disks, a
    schedule that missed runs, alert states, channel health and the archive's consumer group."""
    now = int(time.time() * 1000)
    r.lpush(space.queue("emails"), node_job("n-1", "send", {}, created_at=now - 90_000))
    r.lpush(space.lane("emails", "high"), node_job("n-2", "send", {}, created_at=now - 30_000))
    r.set(space.legacy_pulse("api", "web-1-4242"), node_agent_pulse("api", "web-1-4242", now), ex=30)
    Pulse("billing", r, keyspace=space, node_id="py-1", disk_paths=("/",)).beat()
    scheduler = Scheduler(r, keyspace=space)
    scheduler.register("nightly", "*/5 * * * *", "emails", "report", actor="ops")
    r.zadd(space.schedules(), {"nightly": now - 20 * 60_000})  # overdue: its ticker is down
    r.hset(space.schedule("nightly"), mapping={"nextRun": str(now - 20 * 60_000), "lastRun": str(now - 25 * 60_000)})
    state = AlertState(state=AlertStatus.FIRING, seq=1, since_ms=now, value=7, threshold=5)
    r.hset(space.alerts_states(), state_field("r1", "queue:emails"), encode_alert_state(state))
    record_delivery(r, "webhook:ops", ok=False, now_ms=now, error="HTTP 500", keyspace=space)
    r.xgroup_create(space.events(), "archive", id="0", mkstream=True)


def _ok(job: JobContext) -> None:
    return None


def _boom(job: JobContext) -> None:
    raise RuntimeError("boom")


def run_jobs(r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer) -> None:
    """Five jobs that complete and three that fail once and are dead-lettered, run by the real worker."""
    for n in range(5):
        producer.push("ok", {"n": n}, queue="emails")
    for n in range(3):
        producer.push("boom", {"n": n}, queue="emails", max_attempts=1)
    worker = start_worker(App({"ok": _ok, "boom": _boom}), queues=("emails",))
    wait_for(
        lambda: (
            r.llen(keyspace.failed("emails")) == 3 and worker.processed == 8 and idle(r, keyspace, worker, "emails")
        ),
        what="every job to be run",
    )
    # The acknowledgements and the events (which add to the counters) land in one transaction.
    wait_for(lambda: stored_counters(r, keyspace).dead_lettered == 3, what="the last events")


def stored_counters(r: redis.Redis, keyspace: KeySpace) -> QueueCounters:
    return QueueCounters.from_hash(r.hgetall(keyspace.queue_counters("emails")))
