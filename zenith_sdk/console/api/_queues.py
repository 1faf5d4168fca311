"""Queues: the shared overview, counts, pause, resume, purge and clearing dead letters."""

from __future__ import annotations

from fastapi import APIRouter

from zenith_protocol import QueueSnapshot
from zenith_sdk.console._models import Done, PurgeRequest
from zenith_sdk.console.api._deps import ERRORS, Actor, Console
from zenith_sdk.control import QueueKeys, clear_failed, pause, purge, queue_snapshots, require_queue, resume
from zenith_sdk.overview import Overview

__all__ = ["router"]

router = APIRouter(tags=["queues"], responses=ERRORS)


@router.get("/overview", response_model=Overview)
def get_overview(console: Console) -> Overview:
    """Queue totals, every queue's counts, workers, pulse nodes and firing alerts (shared, at most one interval old)."""
    return console.overview.get()


@router.get("/queues", response_model=list[QueueSnapshot])
def get_queues(console: Console) -> list[QueueSnapshot]:
    """Every queue's counts, from the shared overview."""
    return console.overview.get().queues


@router.get("/queues/{queue}", response_model=QueueSnapshot)
def get_queue(queue: str, console: Console) -> QueueSnapshot:
    """One queue's counts, read now."""
    require_queue(console.client, queue, keyspace=console.keyspace)
    return queue_snapshots(console.client, console.keyspace, [QueueKeys(queue, None)])[0]


@router.post("/queues/{queue}/pause", response_model=Done)
def post_pause(queue: str, console: Console, actor: Actor) -> Done:
    """Pause the queue: workers of every language stop taking its jobs."""
    require_queue(console.client, queue, keyspace=console.keyspace)
    pause(console.client, queue, actor=actor, keyspace=console.keyspace, events=console.events)
    return Done(action="pause", queue=queue)


@router.post("/queues/{queue}/resume", response_model=Done)
def post_resume(queue: str, console: Console, actor: Actor) -> Done:
    """Resume a paused queue."""
    require_queue(console.client, queue, keyspace=console.keyspace)
    resume(console.client, queue, actor=actor, keyspace=console.keyspace, events=console.events)
    return Done(action="resume", queue=queue)


@router.post("/queues/{queue}/purge", response_model=Done)
def post_purge(queue: str, body: PurgeRequest, console: Console, actor: Actor) -> Done:
    """Delete every job of the queue; ``confirm`` must repeat its name."""
    require_queue(console.client, queue, keyspace=console.keyspace)
    count = purge(
        console.client, queue, confirm=body.confirm, actor=actor, keyspace=console.keyspace, events=console.events
    )
    return Done(action="purge", queue=queue, count=count)


@router.post("/queues/{queue}/clear-failed", response_model=Done)
def post_clear_failed(queue: str, console: Console, actor: Actor) -> Done:
    """Delete the queue's dead letters."""
    require_queue(console.client, queue, keyspace=console.keyspace)
    count = clear_failed(console.client, queue, actor=actor, keyspace=console.keyspace, events=console.events)
    return Done(action="clear-failed", queue=queue, count=count, state="failed")
