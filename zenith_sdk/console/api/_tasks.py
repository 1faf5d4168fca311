"""Tasks: a bulk operation over every matching job, run on the server in the background, with its progress.

``POST /queues/{queue}/tasks`` answers at once with a task id; a thread runs the bulk operation
and writes its progress to a Redis hash under the zenith prefix (``KeySpace.console_task``), which
expires :data:`~zenith_protocol.keys.CONSOLE_TASK_TTL_S` after its last change. Any replica of
the console can therefore answer ``GET /tasks/{id}``, whichever one runs the task.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Literal

import redis
from fastapi import APIRouter
from pydantic import Field
from redis.typing import EncodableT, FieldT

from zenith_protocol import KeySpace, NotFoundError, ZenithError
from zenith_protocol.keys import CONSOLE_TASK_TTL_S
from zenith_sdk._wire import text_of
from zenith_sdk.console._models import BulkRequest, Camel
from zenith_sdk.console.api._deps import ERRORS, Actor, Console
from zenith_sdk.control import JobFilter, QueueKeys, bulk, queue_snapshots, require_queue
from zenith_sdk.events import EventEmitter

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["jobs"], responses=ERRORS)


class TaskView(Camel):
    """A background bulk operation: ``running``, then ``done`` (with what it matched and moved) or ``failed``."""

    id: str
    state: Literal["running", "done", "failed"]
    queue: str
    action: str
    job_state: str
    dry_run: bool = False
    actor: str | None = None
    total: int | None = Field(default=None, description="jobs in that state when the task began")
    looked_at: int = Field(default=0, description="entries looked at so far (progress against total)")
    matched: int | None = Field(default=None, description="set when done")
    moved: int | None = Field(default=None, description="set when done")
    error: str | None = None
    started_at: int
    finished_at: int | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write(client: redis.Redis, key: str, fields: dict[str, str | int]) -> None:
    pipe = client.pipeline(transaction=True)  # the fields and the fresh TTL land together
    mapping: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
    pipe.hset(key, mapping=mapping)
    pipe.expire(key, CONSOLE_TASK_TTL_S)
    pipe.execute()


def _run(
    client: redis.Redis, key: str, body: BulkRequest, queue: str, space: KeySpace, actor: str, events: EventEmitter
) -> None:
    """The task's thread: the bulk operation, its progress, and how it ended."""
    try:
        result = bulk(
            client,
            queue,
            body.state,
            body.action,
            keyspace=space,
            job_filter=JobFilter.from_query(body.query) if body.query else None,
            ids=body.ids,
            dry_run=body.dry_run,
            actor=actor,
            events=None if body.dry_run else events,
            progress=lambda looked_at: _write(client, key, {"lookedAt": looked_at}),
        )
        done: dict[str, str | int] = {"matched": result.matched, "moved": result.moved, "lookedAt": result.looked_at}
        _write(client, key, {**done, "state": "done", "finishedAt": _now_ms()})
    except Exception as exc:  # the task reports every failure; the thread has no caller to raise to
        if not isinstance(exc, (ZenithError, ValueError, redis.RedisError)):
            logger.exception("console: task key=%s failed", key)
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        try:
            _write(client, key, {"state": "failed", "error": line, "finishedAt": _now_ms()})
        except redis.RedisError:
            logger.warning("console: task key=%s failed (%s) and Redis did not take its state", key, line)


@router.post("/queues/{queue}/tasks", response_model=TaskView, status_code=202)
def post_task(queue: str, body: BulkRequest, console: Console, actor: Actor) -> TaskView:
    """Start a bulk operation (the body of ``/bulk``) in the background; follow it with ``GET /tasks/{id}``."""
    if body.query:
        JobFilter.from_query(body.query)  # a query that does not parse is a 400 now, not a failed task
    require_queue(console.client, queue, keyspace=console.keyspace)
    snapshot = queue_snapshots(console.client, console.keyspace, [QueueKeys(queue, None)])[0]
    task_id = uuid.uuid4().hex
    key = console.keyspace.console_task(task_id)
    task = TaskView(
        id=task_id, state="running", queue=queue, action=body.action.value, job_state=body.state.value,
        dry_run=body.dry_run, actor=actor, total=getattr(snapshot, body.state.value, None), started_at=_now_ms(),
    )  # fmt: skip
    _write(console.client, key, _fields(task))
    # A daemon thread: a bulk operation is a series of atomic script calls, so a process that
    # exits in the middle leaves every job either moved or not (the task then stays "running").
    worker = threading.Thread(
        target=_run,
        args=(console.client, key, body, queue, console.keyspace, actor, console.events),
        name=f"zenith-console-task-{task_id}",
        daemon=True,
    )
    worker.start()
    return task


def _fields(task: TaskView) -> dict[str, str | int]:
    data = task.model_dump(by_alias=True, exclude_none=True)
    return {name: int(value) if isinstance(value, bool) else value for name, value in data.items()}


@router.get("/tasks/{task_id}", response_model=TaskView)
def get_task(task_id: str, console: Console) -> TaskView:
    """A task's state and progress (kept for an hour after its last change)."""
    raw = console.client.hgetall(console.keyspace.console_task(task_id))
    if not raw:
        raise NotFoundError("task", task_id, hint="a task is kept for an hour after it last changed")
    fields = {text_of(name): text_of(value) for name, value in raw.items()}
    fields["dryRun"] = str(fields.get("dryRun") == "1")
    return TaskView.model_validate({"id": task_id, **fields})
