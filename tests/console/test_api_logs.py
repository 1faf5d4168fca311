"""Live logs: the history, newest first, and the stream of new lines as Server-Sent Events from a real server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import redis
import uvicorn
from fastapi import FastAPI
from patience import HANG_S
from starlette.testclient import TestClient
from wire_data import seed_wire_facts

from zenith_protocol import KeySpace
from zenith_sdk.events import EventEmitter

NOW_MS = 1_767_225_600_000


def test_history_merges_node_lines_newest_first(console: TestClient, r: redis.Redis, keyspace: KeySpace) -> None:
    seed_wire_facts(r, keyspace, NOW_MS)
    r.lpush(keyspace.logs_history(), "not json")
    EventEmitter(r, keyspace=keyspace).completed("emails", "job-9", duration_ms=5)

    lines = console.get("/api/logs").json()

    assert lines[0]["jobId"] == "job-9" and lines[0]["level"] == "success"
    assert [line["level"] for line in lines[1:4]] == ["info", "warn", "success"]  # Node's "warning" reads as warn
    assert lines[-1]["valid"] is False and lines[-1]["raw"] == "not json"
    assert len(console.get("/api/logs", params={"limit": 2}).json()) == 2


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {HANG_S} s")
        time.sleep(0.02)


@contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started, "the server start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(HANG_S)


def test_the_stream_sends_each_published_line_and_lets_go_of_redis_when_the_client_leaves(
    make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace
) -> None:
    channel = keyspace.logs_channel()

    def listeners() -> int:
        return int(dict(r.pubsub_numsub(channel)).get(channel.encode(), 0))

    emitter = EventEmitter(r, keyspace=keyspace)
    with _serving(make_app()) as base, httpx.Client(timeout=HANG_S) as client:
        with client.stream("GET", f"{base}/api/logs/stream") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            _wait(lambda: listeners() == 1, "the subscription")
            emitter.failed("emails", "job-1", error="boom")
            emitter.completed("emails", "job-2", duration_ms=3)
            events = []
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                if len(events) == 2:
                    break
        assert [(e["jobId"], e["level"]) for e in events] == [("job-1", "error"), ("job-2", "success")]
        _wait(lambda: listeners() == 0, "the pub/sub connection to close after the client left")
