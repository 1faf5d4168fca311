"""Maintenance settings and queue snapshots."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from zenith_protocol._types import EpochMs, NonNegativeInt, ProtocolVersion, WireModel, epoch_ms, parse_iso
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = ["MaintenanceConfig", "QueueSnapshot"]


class MaintenanceConfig(WireModel):
    """Archive retention settings stored at ``{settings}maintenance:config``."""

    auto_cleanup: bool = Field(default=False, alias="autoCleanup")
    retention_days: NonNegativeInt = Field(default=30, alias="retentionDays")
    last_run_ms: EpochMs | None = Field(default=None, alias="lastRun")
    protocol_version: ProtocolVersion = PROTOCOL_VERSION

    @field_validator("last_run_ms", mode="before")
    @classmethod
    def _iso_to_ms(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                return epoch_ms(parse_iso(value))
            except ValueError as exc:
                raise ValueError(f"lastRun must be epoch ms or an ISO-8601 time: {exc}") from exc
        return value


class QueueSnapshot(WireModel):
    """Counts of one queue at one moment: what listings show and alert rules evaluate."""

    name: str = Field(min_length=1)
    waiting: NonNegativeInt = 0
    delayed: NonNegativeInt = 0
    failed: NonNegativeInt = 0
    active: NonNegativeInt = Field(default=0, description="in flight: processing lists plus the legacy active set")
    grouped: NonNegativeInt = Field(default=0, description="waiting behind an earlier job of their FIFO group")
    paused: bool = False
    paused_lanes: list[str] = Field(
        default_factory=list, alias="pausedLanes", description="lanes paused by their own flag, in poll order"
    )
    lanes: dict[str, NonNegativeInt] = Field(default_factory=dict, description="waiting per priority lane")
    timestamp: EpochMs | None = None
    protocol_version: ProtocolVersion = PROTOCOL_VERSION
