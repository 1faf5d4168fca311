"""Pulse nodes: per-process resource reports under ``{pulse}{service}:{nodeId}``."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import Field, field_validator

from zenith_protocol._json import js_number
from zenith_protocol._types import EpochMs, JsFloat, NonNegativeInt, ProtocolVersion, WireModel
from zenith_protocol.version import PROTOCOL_VERSION

__all__ = [
    "PULSE_INTERVAL_S",
    "PULSE_STALE_AFTER_MS",
    "PULSE_TTL_S",
    "DiskUsage",
    "Language",
    "PulseCpu",
    "PulseMemory",
    "PulseNode",
    "PulseProcess",
    "PulseProcessMemory",
    "PulseProcessRole",
    "PulseQueue",
    "PulseRuntime",
    "PulseSystemMemory",
    "QueueSize",
    "QueueThroughput",
]

PULSE_INTERVAL_S = 10
PULSE_TTL_S = 30
PULSE_STALE_AFTER_MS = 60_000
"""Readers drop nodes whose ``timestamp`` is older than this."""


class Language(str, Enum):
    """Runtime of a pulse node; any other value reads as ``other``."""

    NODE = "node"
    BUN = "bun"
    DENO = "deno"
    PHP = "php"
    GO = "go"
    PYTHON = "python"
    OTHER = "other"


class PulseCpu(WireModel):
    """CPU use in percent (0-100) of the machine and of the process, and the core count."""

    system: JsFloat = Field(ge=0)
    process: JsFloat = Field(ge=0)
    cores: NonNegativeInt


class PulseSystemMemory(WireModel):
    """Machine memory in bytes."""

    total: NonNegativeInt
    free: NonNegativeInt
    used: NonNegativeInt


class PulseProcessMemory(WireModel):
    """Process memory in bytes; heap figures exist only for runtimes that have one heap."""

    rss: NonNegativeInt
    heap_total: NonNegativeInt | None = Field(default=None, alias="heapTotal")
    heap_used: NonNegativeInt | None = Field(default=None, alias="heapUsed")


class PulseProcessRole(str, Enum):
    """What one process of a multi-process node is; any other value reads as ``other``."""

    SUPERVISOR = "supervisor"
    CHILD = "child"
    OTHER = "other"


class PulseProcess(WireModel):
    """One process of a node that reports several (a supervisor and its children) as one.

    ``rss`` is its resident memory in bytes, ``cpu`` its share of the machine's CPU in percent
    (0-100, as ``cpu.process``), ``slot`` the child's slot under its supervisor.
    """

    pid: NonNegativeInt
    role: PulseProcessRole = PulseProcessRole.OTHER
    slot: NonNegativeInt | None = None
    rss: NonNegativeInt
    cpu: JsFloat | None = Field(default=None, ge=0)

    @field_validator("role", mode="before")
    @classmethod
    def _unknown_role_is_other(cls, value: Any) -> Any:
        known = {member.value for member in PulseProcessRole}
        return value if isinstance(value, PulseProcessRole) or value in known else PulseProcessRole.OTHER


class PulseMemory(WireModel):
    """Machine and process memory."""

    system: PulseSystemMemory
    process: PulseProcessMemory


class PulseRuntime(WireModel):
    """Process uptime in seconds and the framework it runs (free text)."""

    uptime_s: JsFloat = Field(alias="uptime", ge=0)
    framework: str | None = None


class QueueSize(WireModel):
    """Job counts of one queue as the node sees it."""

    waiting: NonNegativeInt = 0
    active: NonNegativeInt = 0
    failed: NonNegativeInt = 0
    delayed: NonNegativeInt = 0


class QueueThroughput(WireModel):
    """Jobs per minute into and out of a queue."""

    in_per_min: JsFloat = Field(alias="in", ge=0)
    out_per_min: JsFloat = Field(alias="out", ge=0)


class PulseQueue(WireModel):
    """A queue a node reports on."""

    name: str
    driver: str | None = None
    size: QueueSize = Field(default_factory=QueueSize)
    throughput: QueueThroughput | None = None


class DiskUsage(WireModel):
    """Usage of one mounted filesystem, in bytes, and percent used (0-100)."""

    path: str
    total: NonNegativeInt
    used: NonNegativeInt
    free: NonNegativeInt
    percent: JsFloat = Field(ge=0, le=100)


class PulseNode(WireModel):
    """One process's resource report (or a supervised group's, see ``processes``), refreshed every 10 s, 30 s TTL."""

    id: str = Field(min_length=1, description="{hostname}-{pid}")
    service: str = Field(min_length=1)
    language: Language = Language.OTHER
    version: str = ""
    pid: NonNegativeInt
    hostname: str
    platform: str = ""
    cpu: PulseCpu
    memory: PulseMemory
    runtime: PulseRuntime
    queues: list[PulseQueue] | None = None
    meta: dict[str, Any] | None = None
    timestamp: EpochMs
    disk: list[DiskUsage] | None = None
    load_avg: list[JsFloat] | None = Field(default=None, alias="loadAvg", max_length=3)
    processes: list[PulseProcess] | None = Field(
        default=None, description="each process of a node made of several; the totals above cover them all"
    )
    protocol_version: ProtocolVersion = PROTOCOL_VERSION

    @field_validator("language", mode="before")
    @classmethod
    def _unknown_language_is_other(cls, value: Any) -> Any:
        known = {member.value for member in Language}
        return value if isinstance(value, Language) or value in known else Language.OTHER

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        """A numeric version reads as JavaScript's ``String(n)`` would give it (``20.0`` is "20")."""
        return js_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    def is_stale(self, now_ms: int) -> bool:
        """True when the node's report is older than :data:`PULSE_STALE_AFTER_MS`."""
        return now_ms - self.timestamp > PULSE_STALE_AFTER_MS
