"""Schedules: list with next and last run, create or replace, pause, resume, run now, remove."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from zenith_protocol import Schedule
from zenith_sdk.console._models import Camel
from zenith_sdk.console.api._deps import ERRORS, Actor, Console
from zenith_sdk.schedules import InvalidScheduleEntry

__all__ = ["router"]

router = APIRouter(tags=["schedules"], responses=ERRORS)


class ScheduleView(Camel):
    """One schedule, or (``valid`` false) a schedule hash that does not decode, with its raw fields."""

    id: str
    valid: bool
    enabled: bool
    cron: str | None = None
    timezone: str | None = Field(default=None, description="IANA zone the cron is read in; null: UTC")
    queue: str | None = None
    job_name: str | None = None
    properties: dict[str, Any] | None = None
    next_run: int | None = Field(default=None, description="epoch ms; null while paused")
    last_run: int | None = Field(default=None, description="epoch ms of the last run the ticker fired")
    job: dict[str, Any] | None = Field(default=None, description="the job each run pushes, in its wire form")
    error: str | None = None
    raw: dict[str, str] | None = None

    @classmethod
    def of(cls, entry: Schedule | InvalidScheduleEntry) -> ScheduleView:
        """The view of ``entry``."""
        if isinstance(entry, InvalidScheduleEntry):
            return cls(
                id=entry.id, valid=False, enabled=entry.enabled, next_run=entry.next_run_ms, error=entry.error,
                raw=entry.raw, cron=entry.raw.get("cron"), queue=entry.raw.get("queue"),
            )  # fmt: skip
        return cls(
            id=entry.id,
            valid=True,
            enabled=entry.enabled,
            cron=entry.cron,
            timezone=entry.timezone,
            queue=entry.queue,
            job_name=entry.job.name,
            properties=entry.job.properties,
            next_run=entry.next_run_ms if entry.enabled else None,
            last_run=entry.last_run_ms,
            job=entry.job.model_dump(mode="json", by_alias=True, exclude_none=True),
        )


class ScheduleRequest(Camel):
    """A schedule to create (or replace): push job ``jobName`` onto ``queue`` at the times ``cron`` names."""

    id: str = Field(min_length=1, max_length=200)
    cron: str = Field(description="five fields (six with seconds first), e.g. '0 3 * * *'")
    queue: str
    job_name: str = Field(min_length=1)
    properties: dict[str, Any] = Field(default_factory=dict)
    timezone: str | None = Field(default=None, description="IANA zone the cron is read in (default UTC)")
    priority: Literal["critical", "high", "low"] | None = None
    max_attempts: int | None = Field(default=None, ge=0, le=1_000_000)
    paused: bool = Field(default=False, description="register it paused")


class ScheduleChange(Camel):
    """What an action on a schedule did."""

    id: str
    action: str
    enabled: bool | None = None
    next_run: int | None = None
    job_id: str | None = Field(default=None, description="run now: the id of the job pushed")


@router.get("/schedules", response_model=list[ScheduleView])
def get_schedules(console: Console) -> list[ScheduleView]:
    """Every schedule, enabled or paused (Node-registered ones too), with its next and last run."""
    return [ScheduleView.of(entry) for entry in console.scheduler.list()]


@router.get("/schedules/{schedule_id}", response_model=ScheduleView)
def get_schedule(schedule_id: str, console: Console) -> ScheduleView:
    """One schedule."""
    return ScheduleView.of(console.scheduler.get(schedule_id))


@router.post("/schedules", response_model=ScheduleView)
def post_schedule(body: ScheduleRequest, console: Console, actor: Actor) -> ScheduleView:
    """Create or replace a schedule; its next run is computed now."""
    schedule = console.scheduler.register(
        body.id,
        body.cron,
        body.queue,
        body.job_name,
        body.properties,
        actor=actor,
        timezone=body.timezone,
        enabled=not body.paused,
        priority=body.priority,
        max_attempts=body.max_attempts,
    )
    return ScheduleView.of(schedule)


@router.post("/schedules/{schedule_id}/pause", response_model=ScheduleChange)
def post_pause(schedule_id: str, console: Console, actor: Actor) -> ScheduleChange:
    """Stop a schedule firing; it is kept and listed as paused."""
    console.scheduler.pause(schedule_id, actor=actor)
    return ScheduleChange(id=schedule_id, action="pause", enabled=False)


@router.post("/schedules/{schedule_id}/resume", response_model=ScheduleChange)
def post_resume(schedule_id: str, console: Console, actor: Actor) -> ScheduleChange:
    """Let a paused schedule fire again; its next run is computed from now."""
    next_run = console.scheduler.resume(schedule_id, actor=actor)
    return ScheduleChange(id=schedule_id, action="resume", enabled=True, next_run=next_run)


@router.post("/schedules/{schedule_id}/run", response_model=ScheduleChange)
def post_run(schedule_id: str, console: Console, actor: Actor) -> ScheduleChange:
    """Push the schedule's job now, leaving its next and last run alone."""
    job_id = console.scheduler.run_now(schedule_id, actor=actor)
    return ScheduleChange(id=schedule_id, action="run", job_id=job_id)


@router.delete("/schedules/{schedule_id}", response_model=ScheduleChange)
def delete_schedule(schedule_id: str, console: Console, actor: Actor) -> ScheduleChange:
    """Delete a schedule."""
    console.scheduler.remove(schedule_id, actor=actor)
    return ScheduleChange(id=schedule_id, action="remove")
