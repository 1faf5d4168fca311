"""Live logs: the latest lines from the history lists, and every new line as a Server-Sent Event."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import anyio
import redis
from fastapi import APIRouter, Query
from redis.client import PubSub
from sse_starlette import EventSourceResponse, ServerSentEvent

from zenith_protocol import ProtocolError, decode_log
from zenith_sdk._wire import text_of
from zenith_sdk.console._models import Camel
from zenith_sdk.console.api._deps import ERRORS, Console

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["logs"], responses=ERRORS)

POLL_S = 0.2
"""How often an idle stream looks for a new line (the longest a line waits before it is sent)."""


class LogView(Camel):
    """One log line, or (``valid`` false) one that does not decode, kept as ``raw``."""

    valid: bool
    level: str | None = None
    message: str | None = None
    worker_id: str | None = None
    queue: str | None = None
    job_id: str | None = None
    timestamp: str | None = None
    timestamp_ms: int | None = None
    problem: str | None = None
    raw: str | None = None

    @classmethod
    def of(cls, raw: bytes | str) -> LogView:
        """The view of one line as Redis holds it."""
        try:
            entry = decode_log(raw)
        except ProtocolError as exc:
            return cls(valid=False, problem=exc.reason, raw=text_of(raw))
        return cls(
            valid=True,
            level=str(getattr(entry.level, "value", entry.level)),
            message=entry.message,
            worker_id=entry.worker_id,
            queue=entry.queue,
            job_id=entry.job_id,
            timestamp=entry.timestamp.isoformat(),
            timestamp_ms=int(entry.timestamp.timestamp() * 1000),
        )


@router.get("/logs", response_model=list[LogView])
def get_logs(console: Console, limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[LogView]:
    """The latest log lines, newest first: the console's history and a Node consumer's own (no monitor prefix)."""
    space = console.keyspace
    keys = list(dict.fromkeys((space.logs_history(), space.legacy_logs_history())))
    pipe = console.client.pipeline(transaction=False)
    for key in keys:
        pipe.lrange(key, 0, limit - 1)
    lines = [LogView.of(raw) for found in pipe.execute() for raw in found]
    # Each list is newest first; a stable sort merges them and keeps lines that do not decode last.
    lines.sort(key=lambda line: -1 if line.timestamp_ms is None else line.timestamp_ms, reverse=True)
    return lines[:limit]


@router.get(
    "/logs/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "one `log` event per line (a LogView)"}},
)
def get_log_stream(console: Console) -> EventSourceResponse:
    """Every log line published from now on, as Server-Sent Events (``event: log``, data: a LogView)."""
    # A pub/sub connection of its own per stream, subscribed here (in the threadpool: a Redis that
    # does not answer is a 503 before the stream starts), closed when the stream ends.
    pubsub: PubSub = console.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call, unused-ignore]
    try:
        pubsub.subscribe(console.keyspace.logs_channel())
    except BaseException:
        pubsub.close()
        raise
    return EventSourceResponse(_events(pubsub))


async def _events(pubsub: PubSub) -> AsyncIterator[ServerSentEvent]:
    """The lines of ``pubsub`` as events until the client goes away (the task is then cancelled) or Redis does."""
    try:
        while True:
            # A read with no timeout only looks at the socket, so it never blocks the event loop;
            # between looks the stream sleeps, costing no thread while it is idle.
            message = cast("dict[str, Any] | None", pubsub.get_message(timeout=0.0))
            if message is None:
                await anyio.sleep(POLL_S)
            elif message.get("type") == "message":
                yield ServerSentEvent(data=LogView.of(message["data"]).model_dump_json(), event="log")
    except redis.RedisError as exc:
        logger.warning("console: live log stream ended: %s", exc)
        yield ServerSentEvent(data=f"the log stream lost Redis ({exc}); reload to reconnect", event="error")
    finally:
        pubsub.close()
