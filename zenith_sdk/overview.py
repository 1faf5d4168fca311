"""Everything at a glance: queue totals, each queue's counts, workers, pulse nodes and firing alerts.

One :func:`overview` is a few round trips (the queue listing, the heartbeats, the pulse nodes,
the alert states and rules); consoles compute it once per interval and share it between viewers.
"""

from __future__ import annotations

import time
from enum import Enum

import redis
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from zenith_protocol import AlertStatus, KeySpace, ProtocolError, QueueSnapshot, Severity
from zenith_sdk.alerts import load_rules, read_states
from zenith_sdk.control import list_nodes, list_workers, queue_snapshots

__all__ = ["FiringAlert", "Overview", "QueueTotals", "overview"]

_JSON = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)
"""Fields by their Python names, JSON in camelCase as every other structure of the protocol."""


class QueueTotals(BaseModel):
    """Jobs of every queue added up, and how many queues there are and are paused."""

    model_config = _JSON

    queues: int = 0
    paused: int = 0
    waiting: int = 0
    delayed: int = 0
    active: int = 0
    grouped: int = 0
    failed: int = 0

    @classmethod
    def of(cls, snapshots: list[QueueSnapshot]) -> QueueTotals:
        """The totals of ``snapshots``."""
        return cls(
            queues=len(snapshots),
            paused=sum(1 for snap in snapshots if snap.paused),
            waiting=sum(snap.waiting for snap in snapshots),
            delayed=sum(snap.delayed for snap in snapshots),
            active=sum(snap.active for snap in snapshots),
            grouped=sum(snap.grouped for snap in snapshots),
            failed=sum(snap.failed for snap in snapshots),
        )


class FiringAlert(BaseModel):
    """An alert that fires now: its rule, subject, value against the threshold, and since when."""

    model_config = _JSON

    rule_id: str
    rule_name: str
    rule_type: str = Field(description="the rule's type: the unit of value and threshold")
    severity: str
    subject: str
    since_ms: int
    value: float | None = None
    threshold: float | None = None
    silenced_by: str | None = None


class Overview(BaseModel):
    """What :func:`overview` read, at ``taken_ms``."""

    model_config = _JSON

    taken_ms: int
    totals: QueueTotals
    queues: list[QueueSnapshot]
    workers: int = Field(description="workers alive (a fresh heartbeat)")
    workers_stale: int = Field(description="workers whose heartbeat expired or stopped")
    nodes: int = Field(description="pulse nodes reporting")
    nodes_stale: int = Field(description="pulse nodes whose last report is over 60 s old")
    firing: list[FiringAlert] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list, description="parts that could not be read, and why")


def _text(value: Enum | str) -> str:
    return str(value.value) if isinstance(value, Enum) else value


def _firing(client: redis.Redis, space: KeySpace, problems: list[str]) -> list[FiringAlert]:
    try:
        rules = {rule.id: rule for rule in load_rules(client, keyspace=space)}
    except ProtocolError as exc:
        problems.append(f"alert rules unreadable: {exc}")
        rules = {}
    found = []
    for (rule_id, subject), state in sorted(read_states(client, keyspace=space).states.items()):
        if state.state is not AlertStatus.FIRING:
            continue
        rule = rules.get(rule_id)
        found.append(
            FiringAlert(
                rule_id=rule_id,
                rule_name=rule.name if rule else rule_id,
                rule_type=_text(rule.type) if rule else "",
                severity=_text(rule.severity) if rule else Severity.WARNING.value,
                subject=subject,
                since_ms=state.since_ms,
                value=state.value,
                threshold=state.threshold,
                silenced_by=state.silenced_by,
            )
        )
    return found


def overview(client: redis.Redis, *, keyspace: KeySpace | None = None, now_ms: int | None = None) -> Overview:
    """Queues, workers, nodes and firing alerts, read now.

    Raises:
        redis.RedisError: Redis could not be read.
    """
    space = keyspace or KeySpace()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    problems: list[str] = []
    queues = queue_snapshots(client, space)
    workers = list_workers(client, keyspace=space, now_ms=now)
    nodes = list_nodes(client, keyspace=space, now_ms=now)
    return Overview(
        taken_ms=now,
        totals=QueueTotals.of(queues),
        queues=queues,
        workers=sum(1 for worker in workers if worker.stale is None),
        workers_stale=sum(1 for worker in workers if worker.stale is not None),
        nodes=sum(1 for node in nodes if not node.stale),
        nodes_stale=sum(1 for node in nodes if node.stale),
        firing=_firing(client, space, problems),
        problems=problems,
    )
