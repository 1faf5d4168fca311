"""The console inside a Django project's ASGI application, under a prefix, beside Django's own views."""

from __future__ import annotations

from collections.abc import Callable

import django
import redis
from console_app import Mounted, crawl
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.urls import path
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from zenith_protocol import KeySpace


def _hello(_request: HttpRequest) -> HttpResponse:
    return HttpResponse("django here")


urlpatterns = [path("hello/", _hello)]


def _django() -> ASGIHandler:
    """The Django project of this test: one view, as ``asgi.py`` builds it."""
    if not settings.configured:
        settings.configure(
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["console.test"],
            SECRET_KEY="not-a-secret-" * 4,
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
        )
        django.setup()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def test_the_console_under_a_prefix_of_a_django_application(
    make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace
) -> None:
    r.sadd(keyspace.queue_index(), "emails")
    application = Starlette(routes=[Mount("/admin/zenith", app=make_app()), Mount("/", app=_django())])
    site = Mounted(TestClient(application, base_url="http://console.test"), "/admin/zenith")

    assert site.client.get("/hello/").text == "django here"
    seen = crawl(site, "/")
    assert site.page("/queues/emails") in seen
    token = site.client.cookies["zenith_csrf"]
    paused = site.client.post(
        site.page("/api/queues/emails/pause"), headers={"Origin": "http://console.test", "X-Zenith-CSRF": token}
    )
    assert paused.status_code == 200 and r.get(keyspace.paused("emails")) == b"1"
