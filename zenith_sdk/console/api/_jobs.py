"""Jobs: list, look up, retry, delete, promote, bulk operations and search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from zenith_sdk.console._models import BulkOutcome, BulkRequest, Done, JobView
from zenith_sdk.console.api._deps import ERRORS, Actor, Console
from zenith_sdk.control import (
    JobFilter,
    JobState,
    bulk,
    delete_job,
    get_job,
    list_jobs,
    promote_job,
    retry_job,
    search,
)

__all__ = ["router"]

router = APIRouter(tags=["jobs"], responses=ERRORS)

Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/queues/{queue}/jobs", response_model=list[JobView])
def get_jobs(
    queue: str, console: Console, state: JobState = JobState.WAITING, offset: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 50,
) -> list[JobView]:  # fmt: skip
    """A page of the queue's jobs in one state (waiting jobs in the order workers take them)."""
    entries = list_jobs(console.client, queue, state, keyspace=console.keyspace, offset=offset, limit=limit)
    return [JobView.of(entry) for entry in entries]


@router.get("/queues/{queue}/jobs/{job_id}", response_model=JobView)
def get_one(queue: str, job_id: str, console: Console) -> JobView:
    """One job, wherever it is in the queue."""
    return JobView.of(get_job(console.client, queue, job_id, keyspace=console.keyspace))


@router.post("/queues/{queue}/jobs/{job_id}/retry", response_model=Done)
def post_retry(queue: str, job_id: str, console: Console, actor: Actor) -> Done:
    """Retry a dead-lettered job now (or a delayed one before its time)."""
    state = retry_job(console.client, queue, job_id, actor=actor, keyspace=console.keyspace, events=console.events)
    return Done(action="retry", queue=queue, count=1, state=state.value)


@router.post("/queues/{queue}/jobs/{job_id}/delete", response_model=Done)
def post_delete(queue: str, job_id: str, console: Console, actor: Actor) -> Done:
    """Delete a job that is not running."""
    state = delete_job(console.client, queue, job_id, actor=actor, keyspace=console.keyspace, events=console.events)
    return Done(action="delete", queue=queue, count=1, state=state.value)


@router.post("/queues/{queue}/jobs/{job_id}/promote", response_model=Done)
def post_promote(queue: str, job_id: str, console: Console, actor: Actor) -> Done:
    """Run a delayed job now."""
    state = promote_job(console.client, queue, job_id, actor=actor, keyspace=console.keyspace, events=console.events)
    return Done(action="promote", queue=queue, count=1, state=state.value)


@router.post("/queues/{queue}/bulk", response_model=BulkOutcome)
def post_bulk(queue: str, body: BulkRequest, console: Console, actor: Actor) -> BulkOutcome:
    """Retry, delete or promote the selected jobs, or every job of the state matching a query.

    With ``dryRun`` nothing moves: the outcome counts what would, with a sample.
    """
    job_filter = JobFilter.from_query(body.query) if body.query else None
    result = bulk(
        console.client,
        queue,
        body.state,
        body.action,
        keyspace=console.keyspace,
        job_filter=job_filter,
        ids=body.ids,
        dry_run=body.dry_run,
        actor=actor,
        events=None if body.dry_run else console.events,
    )
    return BulkOutcome.of(result)


@router.get("/search", response_model=list[JobView])
def get_search(
    q: Annotated[str, Query(min_length=1, description="search grammar: text, field:value, queue:, state:, ...")],
    console: Console,
    limit: Limit = 50,
) -> list[JobView]:
    """Jobs of every queue matching a query, as ``zenith search`` finds them."""
    return [JobView.of(entry) for entry in search(console.client, q, keyspace=console.keyspace, limit=limit)]
