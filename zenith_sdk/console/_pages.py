"""Server-rendered pages: Jinja2 templates, htmx for changes, every URL built from the mount."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from zenith_protocol import NotFoundError
from zenith_sdk.console._security import CSRF_COOKIE, cookie_path, new_csrf_token
from zenith_sdk.console._state import ConsoleState
from zenith_sdk.console._urls import mount_url
from zenith_sdk.control import JobState, list_jobs, require_queue

__all__ = ["page_routes", "render"]

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with the page helpers; sets the cross-site cookie when the browser has none."""
    token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    console: ConsoleState = request.app.state.console
    html = _TEMPLATES.get_template(template).render(
        request=request,
        url=lambda name, query=None, **params: mount_url(request, name, query, **params),
        csrf_token=token,
        title=console.settings.title,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, path=cookie_path(request.scope), samesite="strict", httponly=False)
    return response


def _console(request: Request) -> ConsoleState:
    console: ConsoleState = request.app.state.console
    return console


def overview_page(request: Request) -> HTMLResponse:
    """Totals, queues, workers, nodes and firing alerts."""
    return render(request, "overview.html", overview=_console(request).overview.get())


def queue_page(request: Request) -> HTMLResponse:
    """One queue: its counts and a page of its jobs in one state."""
    console = _console(request)
    queue = request.path_params["queue"]
    try:
        require_queue(console.client, queue, keyspace=console.keyspace)
    except NotFoundError as exc:
        return render(request, "not_found.html", status=404, message=str(exc))
    state = JobState(request.query_params.get("state", JobState.WAITING.value))
    jobs = list_jobs(console.client, queue, state, keyspace=console.keyspace, limit=50)
    return render(request, "queue.html", queue=queue, state=state, states=list(JobState), jobs=jobs)


def page_routes() -> list[BaseRoute]:
    """The page routes, to be added to the app."""
    return [
        Route("/", overview_page, name="overview"),
        Route("/queues/{queue}", queue_page, name="queue"),
    ]
