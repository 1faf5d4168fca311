"""deploy/: the Prometheus rules and the Grafana dashboard use only metrics a console exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import redis
import yaml
from metrics_scrape import run_jobs, scrape, seed_everything_else
from starlette.testclient import TestClient
from worker_fixtures import StartWorker

from zenith_protocol import KeySpace
from zenith_sdk.producer import Producer

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "zenith-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "zenith-dashboard.json"
_METRIC = re.compile(r"\bzenith_[a-z0-9_]+\b")


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return exprs + [variable["definition"] for variable in dashboard["templating"]["list"] if "definition" in variable]


def test_the_rules_are_alerts_with_a_severity_and_a_summary() -> None:
    rules = _rules()

    assert len({rule["alert"] for rule in rules}) == len(rules) >= 6
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and _METRIC.search(rule["expr"]), rule["alert"]


def test_every_metric_the_rules_and_the_dashboard_use_is_exported(
    console: TestClient, r: redis.Redis, keyspace: KeySpace, start_worker: StartWorker, producer: Producer
) -> None:
    run_jobs(r, keyspace, start_worker, producer)
    seed_everything_else(r, keyspace)
    exported = {name for name, _ in scrape(console)}

    used = {name for expr in [rule["expr"] for rule in _rules()] + _dashboard_exprs() for name in _METRIC.findall(expr)}

    assert used - exported == set()
    assert {"zenith_redis_up", "zenith_archive_lag_events", "zenith_node_disk_used_bytes"} <= used
    assert {"zenith_jobs_failed_total", "zenith_queue_workers", "zenith_job_duration_seconds_bucket"} <= used
