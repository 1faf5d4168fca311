"""Job lifecycle events: the durable feed in the events stream that the archive consumes."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import Field

from zenith_protocol._types import EpochMs, JsFloat, NonNegativeInt, ProtocolVersion, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = ["EVENTS_STREAM_MAXLEN", "EVENT_FIELD", "MAX_STACK_CHARS", "EventType", "JobEvent", "OperatorAction"]

EVENTS_STREAM_MAXLEN = 100_000
"""Approximate cap (``XADD ... MAXLEN ~``) of the events stream."""

EVENT_FIELD = "event"
"""The single stream-entry field holding the event JSON."""

MAX_STACK_CHARS = 16_384
"""The longest ``stack`` a writer puts in an event; a longer trace is cut at its start (PROTOCOL 8.3)."""


class EventType(str, Enum):
    """What happened to a job (``operator``: what an operator did to a queue; ``alert``: an alert's state changed)."""

    ENQUEUED = "enqueued"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"
    DELETED = "deleted"
    PROMOTED = "promoted"
    RECOVERED = "recovered"
    OPERATOR = "operator"
    ALERT = "alert"


class OperatorAction(str, Enum):
    """Actions recorded by ``operator`` events (the audit trail)."""

    RETRY = "retry"
    DELETE = "delete"
    PROMOTE = "promote"
    PAUSE = "pause"
    RESUME = "resume"
    PURGE = "purge"
    CLEAR_FAILED = "clear_failed"
    SCHEDULE_REGISTER = "schedule_register"
    SCHEDULE_REMOVE = "schedule_remove"
    SCHEDULE_PAUSE = "schedule_pause"
    SCHEDULE_RESUME = "schedule_resume"
    SCHEDULE_RUN = "schedule_run"
    COMMAND = "command"
    SILENCE = "silence"
    UNSILENCE = "unsilence"
    MUTE = "mute"
    UNMUTE = "unmute"


class JobEvent(WireModel):
    """One lifecycle event.

    Per-job events carry ``jobId``; ``operator`` events carry ``action`` and ``count``;
    ``recovered`` events carry the dead worker's ``workerId`` and the ``count`` of jobs put back;
    ``alert`` events carry one alert state transition (``ruleId``, ``subject``, ``fromState``,
    ``toState``, ``seq``, ...), with ``queue`` the subject's queue (empty for other subjects).
    """

    type: Annotated[EventType | str, Field(union_mode="left_to_right")]
    queue: str
    timestamp: EpochMs
    job_id: str | None = Field(default=None, alias="jobId")
    job_name: str | None = Field(default=None, alias="jobName")
    worker_id: str | None = Field(default=None, alias="workerId")
    attempt: NonNegativeInt | None = None
    duration_ms: JsFloat | None = Field(default=None, alias="durationMs", ge=0)
    delay_ms: NonNegativeInt | None = Field(default=None, alias="delayMs")
    error: str | None = None
    stack: str | None = Field(default=None, description="the failure's traceback (failed events)")
    actor: str | None = None
    action: Annotated[OperatorAction | str | None, Field(union_mode="left_to_right")] = None
    count: NonNegativeInt | None = None
    enqueued_at_ms: EpochMs | None = Field(default=None, alias="enqueuedAt")
    payload: str | None = Field(default=None, description="the job JSON at the time of the event")
    rule_id: str | None = Field(default=None, alias="ruleId", description="alert rule (alert events)")
    subject: str | None = Field(default=None, description="alert subject, e.g. queue:emails (alert events)")
    from_state: str | None = Field(default=None, alias="fromState", description="alert state before (alert events)")
    to_state: str | None = Field(default=None, alias="toState", description="alert state after (alert events)")
    seq: NonNegativeInt | None = Field(default=None, description="the alert state's new sequence number")
    value: JsFloat | None = Field(default=None, description="the value the rule compared (alert events)")
    threshold: JsFloat | None = Field(default=None, description="the rule's threshold (alert events)")
    kind: str | None = Field(default=None, description="notification kind sent, if any (alert events)")
    severity: str | None = Field(default=None, description="the rule's severity (alert events)")
    silenced_by: str | None = Field(default=None, alias="silencedBy", description="silence, mute or inhibition")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION
