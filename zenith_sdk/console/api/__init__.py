"""The console's JSON API: one router per area, all under ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

from zenith_sdk.console.api._fleet import router as fleet
from zenith_sdk.console.api._jobs import router as jobs
from zenith_sdk.console.api._queues import router as queues

__all__ = ["api_router"]


def api_router() -> APIRouter:
    """Every API route, to be included under ``/api``."""
    router = APIRouter()
    for part in (queues, jobs, fleet):
        router.include_router(part)
    return router
