"""The console at /, under a host app, beside a second console and behind a proxy: every URL stays in its mount."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from console_app import MOUNTS, crawl, mounted
from fastapi import FastAPI
from wire_data import seed_wire_facts

from zenith_protocol import KeySpace


@pytest.mark.parametrize("how", MOUNTS)
def test_every_link_of_every_page_resolves_inside_the_mount(
    how: str, make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace
) -> None:
    seed_wire_facts(r, keyspace, int(time.time() * 1000))
    site = mounted(how, make_app)

    seen = crawl(site, "/")

    pages = ["/", "/fragments/overview", "/queues/emails", "/queues/emails?state=failed", "/search", "/workers"]
    pages += ["/pulse", "/schedules", "/alerts", "/archive", "/logs", "/api/history", "/api/docs"]
    assert {site.page(path) for path in pages} <= seen, sorted({site.page(path) for path in pages} - seen)
    assert any(url.startswith(site.page("/queues/emails/jobs/")) for url in seen)
    assert any("/static/" in url for url in seen)
    spec = site.client.get(site.page("/api/openapi.json"))
    assert spec.status_code == 200 and "/api/queues" in spec.json()["paths"]


@pytest.mark.parametrize("how", MOUNTS)
def test_a_page_gives_the_browser_what_it_needs_to_change_things(
    how: str, make_app: Callable[..., FastAPI], r: redis.Redis, keyspace: KeySpace
) -> None:
    r.sadd(keyspace.queue_index(), "emails")
    site = mounted(how, make_app)
    page = site.client.get(site.page("/"))
    token = site.client.cookies["zenith_csrf"]
    cookie = page.headers["set-cookie"]
    assert f"Path={site.base or '/'};" in cookie and "SameSite=strict" in cookie
    assert f'content="{token}"' in page.text
    origin = {"Origin": "http://console.test"}

    without = site.client.post(site.page("/api/queues/emails/pause"), headers=origin)
    foreign = site.client.post(
        site.page("/api/queues/emails/pause"), headers={"Origin": "http://evil.test", "X-Zenith-CSRF": token}
    )
    done = site.client.post(site.page("/api/queues/emails/pause"), headers={**origin, "X-Zenith-CSRF": token})

    assert (without.status_code, foreign.status_code, done.status_code) == (403, 403, 200)
    assert r.get(keyspace.paused("emails")) == b"1"


def test_two_consoles_side_by_side_show_their_own_settings(make_app: Callable[..., FastAPI]) -> None:
    site = mounted("side-by-side", make_app)
    production = site.client.get("/prod/")
    staging = site.client.get("/staging/")
    assert "production" in production.text and "production" not in staging.text
    assert 'href="/staging/static/console.css"' in staging.text
