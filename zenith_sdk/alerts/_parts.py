"""Snapshot parts built from Redis replies: job times, pulse readings, channel failures, archive lags."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from redis.exceptions import ResponseError

from zenith_protocol import ProtocolError, _json, decode_alert_channel_health, decode_job
from zenith_sdk._wire import text_of
from zenith_sdk.alerts.evaluate import NodeReading
from zenith_sdk.fleet import NodeEntry

__all__ = ["archive_lags", "channel_failures", "created_at", "job_id", "node_reading"]

logger = logging.getLogger(__name__)


def created_at(raw: bytes | str) -> int | None:
    """The ``createdAt`` of a job (legacy and Node forms too), or None when it has none."""
    try:
        return decode_job(raw).created_at_ms
    except ProtocolError:
        try:
            value = _json.loads(text_of(raw)).get("createdAt")
        except (ValueError, AttributeError):
            return None
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def job_id(raw: bytes | str) -> str:
    """A job's id; an entry that does not decode is known by its bytes."""
    try:
        return decode_job(raw).id
    except ProtocolError:
        return text_of(raw)


def node_reading(entry: NodeEntry) -> NodeReading | None:
    """What node rules read of a pulse node (None when its report does not decode)."""
    node = entry.node
    if node is None:
        return None
    system = node.memory.system
    ram = system.used / system.total * 100 if system.total else None
    disks = [disk.percent for disk in node.disk or ()]
    return NodeReading(
        service=entry.service,
        node_id=entry.node_id,
        cpu_percent=node.cpu.system,
        ram_percent=ram,
        disk_percent=max(disks) if disks else None,
        last_seen_ms=node.timestamp,
        stale=entry.stale,
    )


def channel_failures(reply: Mapping[Any, Any]) -> dict[str, int]:
    """Consecutive delivery failures per channel, from the channel health hash (unreadable: 0)."""
    failures: dict[str, int] = {}
    for name, raw in reply.items():
        try:
            failures[text_of(name)] = decode_alert_channel_health(raw).consecutive_failures
        except ProtocolError as exc:
            logger.debug("channel=%s health unreadable (%s); read as 0 failures", text_of(name), exc.reason)
            failures[text_of(name)] = 0
    return failures


def archive_lags(reply: Any) -> dict[str, int] | None:
    """Entries not yet delivered per consumer group of the events stream (XINFO GROUPS lag, else pending)."""
    if isinstance(reply, ResponseError) and "no such key" in str(reply).lower():
        return {}  # no events stream yet: no consumer group lags
    if reply is None or isinstance(reply, Exception):
        return None
    lags: dict[str, int] = {}
    for group in reply:
        name = text_of(group.get("name", b""))
        lag = group.get("lag")
        lags[name] = int(lag) if lag is not None else int(group.get("pending", 0) or 0)
    return lags
