"""Cron schedules: a HASH per schedule plus a ZSET index scored by the next run."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from zenith_protocol._types import EpochMs, ProtocolVersion, WireModel
from zenith_protocol.jobs import JobPayload
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = ["SCHEDULE_LOCK_TTL_S", "Schedule"]

SCHEDULE_LOCK_TTL_S = 10
"""TTL of the per-run lock (``SET NX EX``) that makes one ticker fire each run."""


class Schedule(WireModel):
    """One cron schedule. On the wire every value is a string (``enabled`` is ``"true"``/``"false"``)."""

    id: str = Field(min_length=1)
    cron: str = Field(min_length=1)
    queue: str = Field(min_length=1)
    job: JobPayload
    next_run_ms: EpochMs | None = Field(default=None, alias="nextRun")
    last_run_ms: EpochMs | None = Field(default=None, alias="lastRun")
    enabled: bool = True
    connection: str | None = None
    timezone: str | None = Field(default=None, description="IANA zone the cron expression is read in; UTC if absent")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION

    @field_validator("enabled", mode="before")
    @classmethod
    def _enabled_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0"):
                return False
            raise ValueError(f'enabled must be "true" or "false", got {value!r}')
        return value
