"""The JSON shapes of the console API (they give the OpenAPI document its schemas)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from zenith_sdk.control import BulkAction, BulkResult, JobEntry, JobState, NodeEntry, WorkerEntry

__all__ = [
    "ApiError",
    "BulkOutcome",
    "BulkRequest",
    "Camel",
    "Done",
    "JobView",
    "NodeView",
    "PurgeRequest",
    "WorkerView",
]


class Camel(BaseModel):
    """A response or request shape whose fields are camelCase in JSON (snake_case in Python)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class ApiError(BaseModel):
    """What every failed call returns: one line that says what is wrong and what to do."""

    error: str


class Done(BaseModel):
    """A change made: what it was and how many jobs it touched."""

    action: str
    queue: str
    count: int = 0
    state: str | None = None


class JobView(Camel):
    """One entry of a queue: the job's fields, or why its bytes do not decode (kept as ``raw``)."""

    queue: str
    state: JobState
    valid: bool
    id: str | None = None
    name: str | None = None
    lane: str | None = Field(default=None, description="the priority lane of a waiting or delayed job; null: base")
    worker: str | None = Field(default=None, description="the worker running an active job")
    due_at: int | None = Field(default=None, description="when a delayed job is due (epoch ms)")
    properties: dict[str, Any] | None = None
    job: dict[str, Any] | None = Field(default=None, description="the job in its wire form")
    problem: str | None = None
    raw: str | None = None

    @classmethod
    def of(cls, entry: JobEntry) -> JobView:
        """The view of ``entry``."""
        head: dict[str, Any] = {
            "queue": entry.queue,
            "state": entry.state,
            "lane": entry.lane,
            "worker": entry.worker,
            "due_at": entry.due_ms,
        }
        job = entry.job
        if job is None:
            return cls(**head, valid=False, problem=str(entry.problem), raw=entry.raw.decode("utf-8", "replace"))
        wire = job.model_dump(mode="json", by_alias=True, exclude_none=True)
        return cls(**head, valid=True, id=job.id, name=job.name, properties=job.properties, job=wire)


class BulkRequest(Camel):
    """A bulk operation: the selected ``ids``, or every job matching ``query`` (none: the whole state)."""

    state: JobState
    action: BulkAction
    ids: list[str] | None = Field(default=None, max_length=100_000)
    query: str | None = Field(default=None, description="search grammar, as `zenith search` takes it")
    dry_run: bool = Field(default=False, description="count what would move, move nothing")


class BulkOutcome(Camel):
    """What a bulk operation did (or, for a dry run, would do), with a sample of the matching jobs."""

    action: BulkAction
    queue: str
    state: JobState
    dry_run: bool
    matched: int
    moved: int
    looked_at: int
    sample: list[JobView]

    @classmethod
    def of(cls, result: BulkResult) -> BulkOutcome:
        """The outcome of ``result``."""
        return cls(
            action=result.action,
            queue=result.queue,
            state=result.state,
            dry_run=result.dry_run,
            matched=result.matched,
            moved=result.moved,
            looked_at=result.looked_at,
            sample=[JobView.of(entry) for entry in result.sample],
        )


class PurgeRequest(BaseModel):
    """A purge deletes every job of the queue: ``confirm`` must repeat the queue's name."""

    confirm: str


class WorkerView(Camel):
    """One worker (Node or Python), as its heartbeat and the worker index show it."""

    id: str
    key: str | None = None
    keys: list[str] = Field(default_factory=list)
    language: str | None = None
    hostname: str | None = None
    pid: int | None = None
    queues: list[str] = Field(default_factory=list)
    status: str | None = None
    current_job_id: str | None = None
    job_name: str | None = None
    memory: dict[str, Any] | None = None
    uptime: float | None = None
    concurrency: int | None = None
    last_seen_ms: int | None = None
    age_ms: int | None = None
    indexed_ms: int | None = None
    stale: bool = False
    stale_reason: str | None = None
    error: str | None = None
    raw: str | None = None
    heartbeat: dict[str, Any] | None = Field(default=None, description="the heartbeat in its wire form")

    @classmethod
    def of(cls, entry: WorkerEntry) -> WorkerView:
        """The view of ``entry``."""
        return cls.model_validate(entry.to_dict())


class NodeView(Camel):
    """One pulse node (a server process reporting CPU, memory and disk)."""

    service: str
    node_id: str
    key: str
    keys: list[str] = Field(default_factory=list)
    forms: list[str] = Field(default_factory=list)
    language: str | None = None
    age_ms: int | None = None
    stale: bool = False
    error: str | None = None
    raw: str | None = None
    node: dict[str, Any] | None = Field(default=None, description="the report in its wire form")

    @classmethod
    def of(cls, entry: NodeEntry) -> NodeView:
        """The view of ``entry``."""
        return cls.model_validate(entry.to_dict())
