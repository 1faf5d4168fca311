"""Worker heartbeats and live log lines (console prefix)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import Field, field_validator

from zenith_protocol._types import IsoTimestamp, JsFloat, NonNegativeInt, ProtocolVersion, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "HEARTBEAT_TTL_S",
    "LOG_HISTORY_CAP",
    "LogEntry",
    "LogLevel",
    "WorkerHeartbeat",
    "WorkerMemory",
    "WorkerStatus",
    "from_node_consumer_heartbeat",
]

HEARTBEAT_INTERVAL_S = 5
HEARTBEAT_TTL_S = 15
LOG_HISTORY_CAP = 100
"""Log history lists are trimmed to this many lines (``LTRIM 0 99``)."""


class WorkerStatus(str, Enum):
    """What a worker is doing; unknown values from other writers are kept as text."""

    ONLINE = "online"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"


class LogLevel(str, Enum):
    """Level of a live log line (the Node consumer's ``warning`` reads as ``warn``)."""

    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"
    SUCCESS = "success"


class WorkerMemory(WireModel):
    """Memory figures as human strings (``"100MB"``, ``"N/A"``)."""

    rss: str = "N/A"
    heap_total: str = Field(default="N/A", alias="heapTotal")
    heap_used: str = Field(default="N/A", alias="heapUsed")

    @field_validator("rss", "heap_total", "heap_used", mode="before")
    @classmethod
    def _number_means_mb(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{int(value)}MB" if float(value).is_integer() else f"{value}MB"
        return value


class WorkerHeartbeat(WireModel):
    """The heartbeat the console reads at ``{console}worker:{id}`` (TTL-kept).

    The legacy Node-consumer shape (``status``, ``last_ping``, ``metrics``) is converted
    to this shape by the decoder.
    """

    id: str = Field(min_length=1)
    hostname: str
    pid: NonNegativeInt
    uptime_s: JsFloat = Field(default=0, alias="uptime", ge=0)
    memory: WorkerMemory = Field(default_factory=WorkerMemory)
    queues: list[str] = Field(default_factory=list)
    concurrency: NonNegativeInt = 1
    timestamp: IsoTimestamp
    load_avg: list[JsFloat] = Field(default_factory=list, alias="loadAvg", max_length=3)
    status: Annotated[WorkerStatus | str | None, Field(union_mode="left_to_right")] = None
    current_job_id: str | None = Field(default=None, alias="currentJobId")
    job_name: str | None = Field(default=None, alias="jobName")
    language: str | None = None
    cores: NonNegativeInt | None = None
    protocol_version: ProtocolVersion = PROTOCOL_VERSION


class LogEntry(WireModel):
    """One live log line, published on the logs channel and kept in the capped history."""

    level: Annotated[LogLevel | str, Field(union_mode="left_to_right")]
    message: str
    worker_id: str | None = Field(default=None, alias="workerId")
    queue: str | None = None
    job_id: str | None = Field(default=None, alias="jobId")
    timestamp: IsoTimestamp
    protocol_version: ProtocolVersion = PROTOCOL_VERSION

    @field_validator("level", mode="before")
    @classmethod
    def _warning_is_warn(cls, value: Any) -> Any:
        return "warn" if value == "warning" else value


_NODE_CONSUMER_MARKERS = ("last_ping", "metrics")


def from_node_consumer_heartbeat(raw: dict[str, Any]) -> dict[str, Any]:
    """Map the Node consumer's heartbeat (``last_ping``, ``metrics``) onto the console shape.

    Input already in the console shape is returned unchanged. The original fields are kept
    (as unknown fields), so nothing the writer said is lost.
    """
    if "timestamp" in raw or not any(marker in raw for marker in _NODE_CONSUMER_MARKERS):
        return raw
    out = dict(raw)
    out["timestamp"] = raw.get("last_ping")
    metrics = raw.get("metrics")
    if isinstance(metrics, dict):
        if metrics.get("cpu") is not None:
            out.setdefault("loadAvg", [metrics["cpu"]])
        if metrics.get("cores") is not None:
            out.setdefault("cores", metrics["cores"])
        ram = metrics.get("ram")
        if isinstance(ram, dict):
            out.setdefault("memory", {"rss": ram.get("rss", "N/A"), "heapUsed": ram.get("heapUsed", "N/A")})
    return out
