"""Rendering a page: the Jinja2 environment, its filters, and the URL helpers every template uses."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from zenith_sdk.alerts.messages import measure
from zenith_sdk.console._security import CSRF_COOKIE, cookie_path, new_csrf_token
from zenith_sdk.console._state import ConsoleState
from zenith_sdk.console._urls import mount_url

__all__ = ["api_url", "console_of", "render"]

_PARAM = re.compile(r"\{[^}]*\}")


def _when(ms: int | float | None) -> str:
    """An epoch-ms moment as UTC text; an em dash when there is none."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(ms: int | float | None) -> str:
    """A duration in ms as the largest fitting unit (``3 s``, ``4 min``, ``2 h``, ``5 d``)."""
    if ms is None:
        return "—"
    seconds = max(0, int(ms // 1000))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _size(count: int | float | None) -> str:
    """Bytes in binary units."""
    if count is None:
        return "—"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _pretty(value: Any) -> str:
    """``value`` (or JSON text) as indented JSON; text that is not JSON as it is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters.update(when=_when, duration=_duration, size=_size, pretty=_pretty, measure=measure)


def console_of(request: Request) -> ConsoleState:
    """The console state of the app serving ``request``."""
    console: ConsoleState = request.app.state.console
    return console


def api_url(request: Request, path: str, *params: str) -> str | None:
    """The URL of the API route at ``/api{path}`` under this console's mount; None when this console has no such route.

    ``path`` names parameters as ``{}``, filled in order by ``params`` (so templates need not know
    what each endpoint calls them). Routes are looked up in the app's OpenAPI document, which is
    generated from the route definitions and cached by the app.
    """
    wanted = _PARAM.sub("{}", f"/api{path}")
    for template in request.app.openapi()["paths"]:
        if _PARAM.sub("{}", template) == wanted:
            values = iter(quote(str(value), safe="") for value in params)
            return f"{request.scope.get('root_path', '')}{_PARAM.sub(lambda _match: next(values), template)}"
    return None


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with the page helpers; sets the cross-site cookie when the browser has none."""
    token = request.cookies.get(CSRF_COOKIE) or new_csrf_token()
    html = _TEMPLATES.get_template(template).render(
        request=request,
        url=lambda name, query=None, **params: mount_url(request, name, query, **params),
        api=lambda path, *params: api_url(request, path, *params),
        csrf_token=token,
        title=console_of(request).settings.title,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, path=cookie_path(request.scope), samesite="strict", httponly=False)
    return response
