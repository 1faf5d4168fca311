"""The console's server-rendered pages: each a view over SDK calls, every URL built from the mount."""

from zenith_sdk.console.pages._fleet import pulse_page, workers_page
from zenith_sdk.console.pages._jobs import job_page, overview_fragment, overview_page, queue_page, search_page
from zenith_sdk.console.pages._ops import alerts_page, archive_page, logs_page, schedules_page
from zenith_sdk.console.pages._render import api_url, render

__all__ = [
    "alerts_page",
    "api_url",
    "archive_page",
    "job_page",
    "logs_page",
    "overview_fragment",
    "overview_page",
    "pulse_page",
    "queue_page",
    "render",
    "schedules_page",
    "search_page",
    "workers_page",
]
