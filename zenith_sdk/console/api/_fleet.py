"""Workers, pulse nodes, the per-minute history and the console's health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from zenith_sdk.console._models import NodeView, WorkerView
from zenith_sdk.console.api._deps import ERRORS, Console
from zenith_sdk.control import list_nodes, list_workers
from zenith_sdk.history import metric_history, throughput_history

__all__ = ["router"]

router = APIRouter(tags=["fleet"], responses=ERRORS)


class Point(BaseModel):
    """One minute of a series: its start (epoch ms) and value (null: nothing recorded)."""

    at: int
    value: int | None


class History(BaseModel):
    """Jobs finished per minute, and the totals the consoles recorded each minute."""

    throughput: list[Point]
    waiting: list[Point]
    delayed: list[Point]
    failed: list[Point]
    workers: list[Point]


class Health(BaseModel):
    """Whether the console reaches its Redis."""

    redis: bool
    location: str


@router.get("/workers", response_model=list[WorkerView])
def get_workers(console: Console) -> list[WorkerView]:
    """Every worker, Node and Python, alive or stale, with what it runs now."""
    return [WorkerView.of(entry) for entry in list_workers(console.client, keyspace=console.keyspace)]


@router.get("/nodes", response_model=list[NodeView])
def get_nodes(console: Console) -> list[NodeView]:
    """Every pulse node (CPU, memory and disk reports), stale ones marked."""
    return [NodeView.of(entry) for entry in list_nodes(console.client, keyspace=console.keyspace)]


@router.get("/history", response_model=History)
def get_history(console: Console, minutes: Annotated[int, Query(ge=1, le=60)] = 60) -> History:
    """The last ``minutes`` minutes of throughput and recorded totals, oldest first."""
    series = metric_history(console.client, keyspace=console.keyspace, minutes=minutes)
    series["throughput"] = throughput_history(console.client, keyspace=console.keyspace, minutes=minutes)
    return History.model_validate(
        {name: [Point(at=value.at_ms, value=value.value) for value in values] for name, values in series.items()}
    )


@router.get("/health", response_model=Health)
def get_health(console: Console) -> Health:
    """``redis: true`` when Redis answers a PING (the status is 503 when it does not)."""
    console.client.ping()
    return Health(redis=True, location=console.redis_location)
