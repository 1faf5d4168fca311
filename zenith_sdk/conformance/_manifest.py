"""The jobs a producer under test pushes for ``zenith conformance producer`` (spec 13.5)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zenith_protocol import JobPayload, JobType, validate_queue_name
from zenith_sdk.conformance._app import SUCCEED

__all__ = ["ManifestJob", "produced_group", "produced_queue", "producer_manifest"]

_CLASS_NAME = "App\\Jobs\\ConformanceJob"
_TEXT = 'Grüße/ok </script> \u2028\u2029 tab\t newline\n bell\u0007 quote" backslash\\ rocket \U0001f680'


class ManifestJob(BaseModel):
    """One job to push: a new job with these members (``case`` is also in its properties)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    case: str
    queue: str
    name: str
    type: JobType = JobType.JSON
    properties: dict[str, Any]
    priority: str | None = None
    delay_seconds: int | None = Field(default=None, alias="delaySeconds")
    group_id: str | None = Field(default=None, alias="groupId")
    max_attempts: int = Field(default=3, alias="maxAttempts")
    retry_after_seconds: int | float | None = Field(default=None, alias="retryAfterSeconds")
    retry_multiplier: int | float | None = Field(default=None, alias="retryMultiplier")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the manifest prints (members that are not set are left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def expected_data(self) -> str:
        """The canonical ``data`` text of this job (4.2)."""
        return JobPayload.create(self.name, self.properties, job_type=self.type).data

    @property
    def lane(self) -> str | None:
        """The lane its ``priority`` names (``None``: the base lane)."""
        return self.priority if self.priority in ("critical", "high", "low") else None


def produced_queue(queue: str) -> str:
    """The queue the manifest's jobs go to."""
    return validate_queue_name(f"{validate_queue_name(queue)}.produced")


def produced_group(queue: str) -> str:
    """The FIFO group of the manifest's grouped jobs."""
    return f"{produced_queue(queue)}.group"


def _sorted(value: Any) -> Any:
    """Objects with their members sorted (at every depth), so that maps that sort keys write them alike."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def producer_manifest(queue: str) -> tuple[ManifestJob, ...]:
    """The jobs to push, in push order, for ``zenith conformance producer --queue queue``."""
    target, group = produced_queue(queue), produced_group(queue)

    def job(case: str, properties: dict[str, Any] | None = None, **fields: Any) -> ManifestJob:
        fields.setdefault("name", SUCCEED)
        return ManifestJob(case=case, queue=target, properties=_sorted({"case": case, **(properties or {})}), **fields)

    numbers = {"big": 1e21, "half": 0.5, "int": 42, "negative": -3, "tiny": 1e-7, "whole": 2.0}
    nested = {"empty": {}, "list": [1, "two", {"three": 3}], "object": {"z": False, "a": {"b": True}}}
    return (
        job("text", {"text": _TEXT}),
        job("class", {"n": 7}, name=_CLASS_NAME, type=JobType.CLASS),
        job("numbers", numbers, max_attempts=5, retry_after_seconds=1.5, retry_multiplier=3),
        job("nested", nested),
        job("critical", priority="critical"),
        job("high", priority="high"),
        job("low", priority="low"),
        job("delayed", delay_seconds=3600),
        job("delayed-high", delay_seconds=90, priority="high"),
        job("group-1", priority="high", group_id=group),
        job("group-2", group_id=group),
        job("group-3", group_id=group),
    )
