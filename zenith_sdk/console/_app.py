"""``create_app``: the console as an ASGI app that works at ``/``, mounted under any path, or behind a proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from zenith_sdk import __version__
from zenith_sdk.console._errors import install_error_handlers
from zenith_sdk.console._metrics import metrics_endpoint
from zenith_sdk.console._pages import page_routes
from zenith_sdk.console._security import CsrfMiddleware
from zenith_sdk.console._settings import ConsoleSettings
from zenith_sdk.console._state import ConsoleState
from zenith_sdk.console._urls import mount_url
from zenith_sdk.console.api import api_router

__all__ = ["create_app"]


async def _docs(request: Request) -> HTMLResponse:
    """The API's interactive documentation, with Swagger UI from this console's static files."""

    def static(path: str) -> str:
        return mount_url(request, "static", path=path)

    return get_swagger_ui_html(
        openapi_url=mount_url(request, "openapi"),
        title=request.app.title,
        swagger_js_url=static("vendor/swagger-ui/swagger-ui-bundle.js"),
        swagger_css_url=static("vendor/swagger-ui/swagger-ui.css"),
        swagger_favicon_url=static("favicon.svg"),
    )


def create_app(settings: ConsoleSettings | None = None, *, client: redis.Redis | None = None) -> FastAPI:
    """A console over the Redis ``settings`` names (default: ``ConsoleSettings()``, from ``ZENITH_*``).

    Pass ``client`` to share a redis-py client the host application owns (it is not closed).
    Mount the result anywhere (``host.mount("/admin/zenith", create_app())``): every URL it
    emits is built from the mount, and several consoles can be mounted side by side.
    """
    settings = settings or ConsoleSettings()
    console = ConsoleState(settings, client)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        console.close()

    app = FastAPI(
        title=f"Zenith console: {settings.title}",
        version=__version__,
        description="Queues, jobs, workers and servers of a Redis-backed job system, and what to do about them.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served below with the vendored Swagger UI, not a CDN's
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.console = console
    install_error_handlers(app, console.redis_location)
    app.include_router(api_router(), prefix="/api")
    app.add_route("/api/docs", _docs, include_in_schema=False, name="api_docs")
    app.add_route("/metrics", metrics_endpoint(console), include_in_schema=False, name="metrics")
    app.router.routes.extend(page_routes())
    app.mount("/static", StaticFiles(packages=[("zenith_sdk.console", "static")]), name="static")
    app.add_middleware(
        CsrfMiddleware, tokens=console.tokens, trusted=list(settings.trusted_origins), actor=settings.actor
    )
    return app
