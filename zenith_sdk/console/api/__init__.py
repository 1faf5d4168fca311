"""The console's JSON API: one router per area, all under ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

from zenith_sdk.console.api._alerts import router as alerts
from zenith_sdk.console.api._archive import router as archive
from zenith_sdk.console.api._fleet import router as fleet
from zenith_sdk.console.api._jobs import router as jobs
from zenith_sdk.console.api._logs import router as logs
from zenith_sdk.console.api._queues import router as queues
from zenith_sdk.console.api._schedules import router as schedules
from zenith_sdk.console.api._tasks import router as tasks

__all__ = ["api_router"]


def api_router() -> APIRouter:
    """Every API route, to be included under ``/api``."""
    router = APIRouter()
    for part in (queues, jobs, tasks, fleet, schedules, alerts, archive, logs):
        router.include_router(part)
    return router
