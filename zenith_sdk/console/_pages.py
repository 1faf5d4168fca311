"""The page routes: server-rendered views (see :mod:`zenith_sdk.console.pages`), every URL built from the mount."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from zenith_sdk.console.pages import (
    alerts_page,
    archive_page,
    job_page,
    logs_page,
    overview_fragment,
    overview_page,
    pulse_page,
    queue_page,
    render,
    schedules_page,
    search_page,
    workers_page,
)

__all__ = ["page_routes", "render"]


def page_routes() -> list[BaseRoute]:
    """The page routes, to be added to the app."""
    return [
        Route("/", overview_page, name="overview"),
        Route("/fragments/overview", overview_fragment, name="overview_live"),
        Route("/queues/{queue}", queue_page, name="queue"),
        Route("/queues/{queue}/jobs/{job_id}", job_page, name="job"),
        Route("/search", search_page, name="search"),
        Route("/workers", workers_page, name="workers"),
        Route("/pulse", pulse_page, name="pulse"),
        Route("/schedules", schedules_page, name="schedules"),
        Route("/alerts", alerts_page, name="alerts"),
        Route("/archive", archive_page, name="archive"),
        Route("/logs", logs_page, name="logs"),
    ]
