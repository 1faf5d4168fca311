"""The job payload stored in queue lists, delayed sets, dead-letter lists and schedules."""

from __future__ import annotations

import time
import uuid
from enum import Enum
from functools import cached_property
from typing import Any

from pydantic import Field, field_validator

from zenith_protocol import _json
from zenith_protocol._types import EpochMs, JsFloat, NonNegativeInt, ProtocolVersion, SafeInt, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_RETRY_AFTER_S",
    "DEFAULT_RETRY_MULTIPLIER",
    "FAILED_LIST_CAP",
    "MAX_RETRY_DELAY_S",
    "JobPayload",
    "JobType",
    "retry_delay_s",
]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY_AFTER_S = 1.0
DEFAULT_RETRY_MULTIPLIER = 2.0
MAX_RETRY_DELAY_S = 3600
FAILED_LIST_CAP = 1000
"""Dead-letter lists are trimmed to this many entries (``LTRIM 0 999``)."""


class JobType(str, Enum):
    """How ``data`` names the job: ``{"job": name}`` for ``json``, ``{"class": name}`` for ``class``."""

    JSON = "json"
    CLASS = "class"


class JobPayload(WireModel):
    """One job as stored in Redis. Field order is the Node producer's push order.

    ``data`` is a string holding JSON (``{"job"|"class": name, "properties": {...}}``);
    use :attr:`name` and :attr:`properties` to read it and :meth:`create` to build a job.
    """

    id: str = Field(min_length=1)
    type: JobType
    data: str = Field(description='JSON text: {"job"|"class": <name>, "properties": {...}}')
    class_name: str | None = Field(default=None, alias="className")
    created_at_ms: EpochMs | None = Field(default=None, alias="createdAt")
    delay_seconds: JsFloat | None = Field(default=None, alias="delaySeconds", ge=0)
    attempts: NonNegativeInt | None = None
    max_attempts: NonNegativeInt | None = Field(default=None, alias="maxAttempts")
    group_id: str | None = Field(default=None, alias="groupId")
    error: str | None = None
    failed_at_ms: EpochMs | None = Field(default=None, alias="failedAt")
    priority: str | SafeInt | None = None
    retry_after_seconds: JsFloat | None = Field(default=None, alias="retryAfterSeconds", ge=0)
    retry_multiplier: JsFloat | None = Field(default=None, alias="retryMultiplier", ge=0)
    protocol_version: ProtocolVersion = PROTOCOL_VERSION

    @field_validator("data", mode="before")
    @classmethod
    def _data_is_json_object(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return _json.dumps(value)
        if isinstance(value, str):
            try:
                parsed = _json.loads(value)
            except (ValueError, RecursionError) as exc:
                raise ValueError(f"data must hold JSON text, but it does not parse ({exc})") from exc
            if not isinstance(parsed, dict):
                raise ValueError('data must hold a JSON object such as {"job": name, "properties": {...}}')
        return value

    @cached_property
    def _parsed_data(self) -> dict[str, Any]:
        parsed = _json.loads(self.data)
        return parsed if isinstance(parsed, dict) else {}

    @property
    def name(self) -> str | None:
        """The job name: ``data.job`` or ``data.class``, else ``className``."""
        for key in ("job", "class"):
            value = self._parsed_data.get(key)
            if isinstance(value, str) and value:
                return value
        return self.class_name

    @property
    def properties(self) -> dict[str, Any]:
        """The job's arguments (``data.properties``; empty when absent)."""
        value = self._parsed_data.get("properties")
        return value if isinstance(value, dict) else {}

    @classmethod
    def create(
        cls,
        name: str,
        properties: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
        job_type: JobType = JobType.JSON,
        created_at_ms: int | None = None,
        delay_seconds: float | None = None,
        max_attempts: int | None = None,
        group_id: str | None = None,
        priority: str | int | None = None,
        retry_after_seconds: float | None = None,
        retry_multiplier: float | None = None,
    ) -> JobPayload:
        """Build a new job in canonical form (``attempts`` 0, a fresh UUID, created now)."""
        if not name:
            raise ValueError("a job needs a non-empty name")
        data = {("class" if job_type is JobType.CLASS else "job"): name, "properties": properties or {}}
        return cls(
            id=job_id or str(uuid.uuid4()),
            type=job_type,
            data=_json.dumps(data),
            class_name=name if job_type is JobType.CLASS else None,
            created_at_ms=created_at_ms if created_at_ms is not None else int(time.time() * 1000),
            delay_seconds=delay_seconds,
            attempts=0,
            max_attempts=max_attempts,
            group_id=group_id,
            priority=priority,
            retry_after_seconds=retry_after_seconds,
            retry_multiplier=retry_multiplier,
        )


def retry_delay_s(job: JobPayload, attempt: int) -> int:
    """Seconds to wait, after a failure, before attempt number ``attempt`` runs.

    ``ceil(retryAfterSeconds * retryMultiplier^(attempt-1))`` capped at one hour, where ``attempt``
    is the attempt about to be scheduled: 2 for the first retry (2 s by default), 3 for the next (4 s).
    """
    after = DEFAULT_RETRY_AFTER_S if job.retry_after_seconds is None else job.retry_after_seconds
    multiplier = DEFAULT_RETRY_MULTIPLIER if job.retry_multiplier is None else job.retry_multiplier
    exponent = max(attempt - 1, 0)
    try:
        delay = after * multiplier**exponent
    except OverflowError:
        return MAX_RETRY_DELAY_S
    if delay > MAX_RETRY_DELAY_S:
        # Also catches a product that overflowed to infinity (1e308 * 2), which int() refuses.
        return MAX_RETRY_DELAY_S
    return max(0, -int(-delay // 1))
