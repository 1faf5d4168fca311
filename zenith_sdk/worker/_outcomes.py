"""What the worker writes when a job finishes: acks, retries, dead letters and their events."""

from __future__ import annotations

import base64
import hashlib
import traceback
from dataclasses import dataclass, field

from zenith_protocol import (
    EventType,
    JobEvent,
    JobPayload,
    KeySpace,
    encode_job,
    retry_delay_s,
)
from zenith_protocol.events import MAX_STACK_CHARS
from zenith_protocol.jobs import FAILED_LIST_CAP
from zenith_sdk._wire import storable
from zenith_sdk.events import AttemptEvents, LaterCompleted, job_event
from zenith_sdk.scripts import SETTLE, Script, ScriptArg, ScriptPipeline

__all__ = ["Fetched", "Op", "error_text", "failure", "invalid_payload", "stack_text", "success"]

_MAX_ERROR_CHARS = 4000
INVALID_JOB_NAME = "zenith.invalid-payload"


@dataclass
class Fetched:
    """A job moved into this worker's processing list: its exact bytes and, if it decodes, its payload."""

    queue: str
    raw: bytes
    payload: JobPayload | None
    problem: str | None = None
    lane: str | None = None
    """The lane it was fetched from (``None``: the base lane; also for jobs adopted after a lost reply)."""


@dataclass
class Op:
    """One write for the next round trip: a call of ``script``, or with none a plain acknowledge
    (``LREM`` of ``raw`` from ``keys[0]``). ``raw`` is the processing-list entry it removes."""

    script: Script | None
    queue: str
    keys: list[str]
    raw: bytes
    args: list[ScriptArg] = field(default_factory=list)

    def queue_on(self, pipe: ScriptPipeline) -> None:
        """Add this write to ``pipe``."""
        if self.script is None:
            pipe.commands.lrem(self.keys[0], 1, self.raw)  # type: ignore[arg-type]
        else:
            pipe.call(self.script, self.keys, self.args)


def error_text(exc: BaseException) -> str:
    """``Type: message``, shortened to what a dead-letter entry should hold."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def stack_text(exc: BaseException) -> str | None:
    """The traceback of ``exc`` as Python prints it, cut at its start past ``MAX_STACK_CHARS`` (PROTOCOL 8.3)."""
    if exc.__traceback__ is None:
        return None
    text = "".join(traceback.format_exception(exc)).rstrip("\n")
    return text if len(text) <= MAX_STACK_CHARS else "...\n" + text[-(MAX_STACK_CHARS - 4) :]


def _group_keys(space: KeySpace, item: Fetched) -> tuple[list[str], str]:
    """The keys the settle script needs to release the job's FIFO group, and the group id ("" for none)."""
    group = storable(item.payload.group_id) if item.payload and item.payload.group_id else None
    if not group:
        return [], ""
    keys = [space.group_active(item.queue), space.group_pending(item.queue, group)]
    return [*keys, *space.lanes_in_poll_order(item.queue)], group


def success(
    space: KeySpace,
    item: Fetched,
    worker_id: str,
    attempt: int,
    duration_ms: float,
    *,
    events: AttemptEvents | None = None,
    started_ms: int | None = None,
) -> tuple[list[Op], list[LaterCompleted]]:
    """Ack a completed job; a grouped job also lets the next job of its group go.

    With ``events`` (a worker that writes events), its ``completed`` event comes too, carrying
    ``started_ms`` when the attempt's started event was not written (PROTOCOL 8.4); it is timed
    now and encoded with the other events of its round trip.
    """
    processing = space.processing(item.queue, worker_id)
    group_keys, group = _group_keys(space, item)
    if group:
        keys = [processing, processing, *group_keys]
        op = Op(SETTLE, item.queue, keys, item.raw, [item.raw, "", "ack", 0, group])
    else:
        op = Op(None, item.queue, [processing], item.raw)
    if events is None or item.payload is None:
        return [op], []
    return [op], [events.completed_later(item.queue, item.payload, attempt, duration_ms, started_ms=started_ms)]


def _dead_letter(space: KeySpace, item: Fetched, worker_id: str, updated: JobPayload) -> Op:
    group_keys, group = _group_keys(space, item)
    keys = [space.processing(item.queue, worker_id), space.failed(item.queue), *group_keys]
    args: list[ScriptArg] = [item.raw, encode_job(updated), "dead", FAILED_LIST_CAP, group]
    return Op(SETTLE, item.queue, keys, item.raw, args)


def failure(
    space: KeySpace,
    item: Fetched,
    worker_id: str,
    attempt: int,
    max_attempts: int,
    error: str,
    now_ms: int,
    *,
    retryable: bool = True,
    duration_ms: float | None = None,
    stack: str | None = None,
) -> tuple[list[Op], list[JobEvent]]:
    """Retry a failed job after its backoff, or dead-letter it when attempts run out.

    A retry waits in the delayed set of the lane the job was fetched from and keeps the job's
    FIFO group (it is still the group's one job); dead-lettering lets the next job of the group go.
    Either keeps the ``protocolVersion`` the job was read with: a legacy job stays legacy.
    ``duration_ms`` is how long the handler ran (``None``: none ran) and ``stack`` the failure's
    traceback, both recorded on the ``failed`` event.
    """
    payload = item.payload
    if payload is None:  # pragma: no cover - invalid payloads go through invalid_payload()
        raise ValueError("failure() needs a decoded payload")
    events = [
        job_event(
            EventType.FAILED,
            item.queue,
            payload,
            error=error,
            worker_id=worker_id,
            attempt=attempt,
            duration_ms=duration_ms,
            stack=stack,
        )
    ]
    if retryable and attempt < max_attempts:
        delay_s = retry_delay_s(payload, attempt + 1)
        updated = payload.model_copy(update={"attempts": attempt, "delay_seconds": delay_s, "error": error})
        keys = [space.processing(item.queue, worker_id), space.delayed(item.queue, item.lane)]
        args: list[ScriptArg] = [item.raw, encode_job(updated), "retry", delay_s * 1000, ""]
        op = Op(SETTLE, item.queue, keys, item.raw, args)
        retried = job_event(
            EventType.RETRIED, item.queue, payload, delay_ms=delay_s * 1000, worker_id=worker_id, attempt=attempt
        )
        events.append(retried)
    else:
        updated = payload.model_copy(update={"attempts": attempt, "error": error, "failed_at_ms": now_ms})
        op = _dead_letter(space, item, worker_id, updated)
        events.append(
            job_event(
                EventType.DEAD_LETTERED,
                item.queue,
                updated,
                error=error,
                include_payload=True,
                worker_id=worker_id,
                attempt=attempt,
            )
        )
    return [op], events


def invalid_payload(space: KeySpace, item: Fetched, worker_id: str, now_ms: int) -> tuple[list[Op], JobEvent]:
    """Dead-letter an entry that does not decode, wrapped in a valid job that keeps its exact bytes."""
    digest = hashlib.sha1(item.raw).hexdigest()[:16]
    try:
        kept: dict[str, str] = {"raw": item.raw.decode("utf-8")}
    except UnicodeDecodeError:
        kept = {"rawBase64": base64.b64encode(item.raw).decode("ascii")}
    error = f"invalid payload: {item.problem}"
    wrapper = JobPayload.create(INVALID_JOB_NAME, kept, job_id=f"invalid-{digest}", created_at_ms=now_ms)
    wrapper = wrapper.model_copy(update={"error": error, "failed_at_ms": now_ms, "max_attempts": 1})
    event = job_event(
        EventType.DEAD_LETTERED, item.queue, wrapper, error=error, worker_id=worker_id, include_payload=True
    )
    return [_dead_letter(space, item, worker_id, wrapper)], event
