"""The overview, a queue and its jobs, one job, and search across queues."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from zenith_protocol import ConfigError, NotFoundError
from zenith_sdk.console._archive_engine import open_archive
from zenith_sdk.console.pages._render import console_of, render
from zenith_sdk.control import JobState, QueueKeys, get_job, list_jobs, queue_snapshots, require_queue, search

if TYPE_CHECKING:
    pass

__all__ = ["job_page", "overview_fragment", "overview_page", "queue_page", "search_page"]

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
"""Jobs listed per page."""


def overview_page(request: Request) -> HTMLResponse:
    """Totals, throughput and sparklines, queues and firing alerts."""
    return render(request, "overview.html", overview=console_of(request).overview.get())


def overview_fragment(request: Request) -> HTMLResponse:
    """The part of the overview the page polls: totals, queues and firing alerts."""
    return render(request, "_overview_live.html", overview=console_of(request).overview.get())


def _state(request: Request) -> JobState:
    raw = request.query_params.get("state", JobState.WAITING.value)
    try:
        return JobState(raw)
    except ValueError:
        return JobState.WAITING


def _offset(request: Request) -> int:
    raw = request.query_params.get("offset", "0")
    return max(0, int(raw)) if raw.isdigit() else 0


def _not_found(request: Request, exc: Exception) -> HTMLResponse:
    return render(request, "not_found.html", status=404, message=str(exc))


def queue_page(request: Request) -> HTMLResponse:
    """One queue: its counts per state, pause and resume, and a page of its jobs in one state (or matching a query)."""
    console = console_of(request)
    queue = request.path_params["queue"]
    try:
        require_queue(console.client, queue, keyspace=console.keyspace)
    except NotFoundError as exc:
        return _not_found(request, exc)
    state, offset, query = _state(request), _offset(request), request.query_params.get("q", "").strip()
    snapshot = queue_snapshots(console.client, console.keyspace, [QueueKeys(queue, None)])[0]
    problem = None
    if query:
        try:
            found = search(console.client, query, keyspace=console.keyspace, queues=[queue], states=[state])
            jobs = list(found)
        except (ConfigError, ValueError) as exc:
            jobs, problem = [], str(exc)
    else:
        jobs = list_jobs(console.client, queue, state, keyspace=console.keyspace, offset=offset, limit=PAGE_SIZE)
    context: dict[str, Any] = {"queue": queue, "snapshot": snapshot, "state": state, "states": list(JobState)}
    context.update(jobs=jobs, query=query, problem=problem, offset=offset, page_size=PAGE_SIZE)
    return render(request, "queue.html", **context)


def _timeline(request: Request, queue: str, job_id: str) -> tuple[Any, str | None]:
    """The job's archived timeline, or why there is none to show."""
    engine = console_of(request).archive(open_archive)
    if engine is None:
        return None, "no archive configured"
    from sqlalchemy.exc import SQLAlchemyError

    from zenith_archive.query import timeline

    try:
        return timeline(engine, job_id, queue=queue), None
    except NotFoundError:
        return None, "the archive has no record of this job yet (the archiver writes it within seconds)"
    except SQLAlchemyError as exc:
        logger.warning("console: archive unreadable: %s", exc)
        return None, f"the archive could not be read ({type(exc).__name__}); run `zenith archive migrate`"


def job_page(request: Request) -> HTMLResponse:
    """One job: its payload, error and stack, attempts, and its timeline from the archive."""
    console = console_of(request)
    queue, job_id = request.path_params["queue"], request.path_params["job_id"]
    try:
        entry = get_job(console.client, queue, job_id, keyspace=console.keyspace)
    except NotFoundError as exc:
        return _not_found(request, exc)
    found, why = _timeline(request, queue, job_id)
    stack = next((event.stack for event in reversed(found.events) if event.stack), None) if found else None
    context = {"entry": entry, "timeline": found, "no_timeline": why, "stack": stack}
    return render(request, "job.html", queue=queue, job_id=job_id, **context)


def search_page(request: Request) -> HTMLResponse:
    """Jobs of every queue matching the query in the URL."""
    console = console_of(request)
    query = request.query_params.get("q", "").strip()
    jobs, problem = [], None
    if query:
        try:
            jobs = list(search(console.client, query, keyspace=console.keyspace, limit=PAGE_SIZE))
        except (ConfigError, ValueError) as exc:
            problem = str(exc)
    return render(request, "search.html", query=query, jobs=jobs, problem=problem, page_size=PAGE_SIZE)
