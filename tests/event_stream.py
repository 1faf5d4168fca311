"""Reading the lifecycle events stream back in tests."""

from __future__ import annotations

from collections import Counter

import redis

from zenith_protocol import EventType, JobEvent, KeySpace, Notification, decode_alert_notification, decode_event_fields


def stream_events(r: redis.Redis, space: KeySpace, job_id: str | None = None) -> list[JobEvent]:
    """Every event in the stream, oldest first (only ``job_id``'s when given)."""
    events = []
    for _id, fields in r.xrange(space.events()) or []:
        assert fields is not None
        event = decode_event_fields(fields)
        if job_id is None or event.job_id == job_id:
            events.append(event)
    return events


def completions(r: redis.Redis, space: KeySpace) -> Counter[str]:
    """How many ``completed`` events each job id has."""
    return Counter(e.job_id for e in stream_events(r, space) if e.type == EventType.COMPLETED and e.job_id)


def outbox_notifications(r: redis.Redis, space: KeySpace) -> list[Notification]:
    """Every notification in the alert outbox, oldest first."""
    found = []
    for _id, fields in r.xrange(space.alerts_outbox()) or []:
        assert fields is not None
        found.append(decode_alert_notification(fields[b"notification"]))
    return found
