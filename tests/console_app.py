"""Consoles for tests: settings on a test's key prefixes, and the four ways a host serves one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import redis
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from zenith_archive import Archiver, connect, migrate
from zenith_protocol import KeySpace
from zenith_sdk._env import PREFIX_FIELDS
from zenith_sdk.console import ConsoleSettings
from zenith_sdk.events import EventEmitter

TOKEN = "ops=0123456789abcdef-token"
"""An API token the consoles of these tests accept (name ``ops``)."""


def archive_of(
    folder: Path, r: redis.Redis, space: KeySpace, write: Callable[[EventEmitter], object] | None = None
) -> str:
    """The URL of a migrated SQLite archive in ``folder`` holding what ``write`` emitted (and the stream held)."""
    url = f"sqlite:///{folder / 'archive.db'}"
    engine = connect(url)
    migrate(engine)
    if write is not None:
        write(EventEmitter(r, keyspace=space))
    archiver = Archiver(r, engine, keyspace=space)
    while archiver.run_once().events:
        pass
    engine.dispose()
    return url


def settings_for(space: KeySpace, redis_url: str, **extra: object) -> ConsoleSettings:
    """Console settings for ``space`` on ``redis_url``."""
    prefixes = {name: getattr(space, name) for name in PREFIX_FIELDS}
    return ConsoleSettings(redis_url=redis_url, **prefixes, api_tokens=[TOKEN], **extra)  # type: ignore[arg-type]


@dataclass
class Mounted:
    """A console as a browser reaches it: the client, and the path the console lives under."""

    client: TestClient
    base: str
    """``""`` at the root, else the mount or proxy path (``/admin/zenith``)."""

    def page(self, path: str) -> str:
        return f"{self.base}{path}"


def _host(app: FastAPI, path: str) -> Starlette:
    return Starlette(routes=[Mount(path, app=app)])


MOUNTS = ("root", "mounted", "side-by-side", "proxy")


def mounted(how: str, make: Callable[..., FastAPI]) -> Mounted:
    """A console served ``how``: at the root, under a host app, beside a second console, or behind a proxy."""
    if how == "root":
        return Mounted(TestClient(make(), base_url="http://console.test"), "")
    if how == "mounted":
        return Mounted(TestClient(_host(make(), "/admin/zenith"), base_url="http://console.test"), "/admin/zenith")
    if how == "side-by-side":
        host = Starlette(routes=[Mount("/prod", app=make(title="production")), Mount("/staging", app=make())])
        return Mounted(TestClient(host, base_url="http://console.test"), "/prod")
    # A proxy strips /proxy and tells the app where it lives (uvicorn --root-path /proxy does this).
    return Mounted(TestClient(make(), base_url="http://console.test", root_path="/proxy"), "/proxy")


_FOLLOWED = ("href", "src", "action", "hx-get", "data-history-url", "data-then")
"""Attributes whose URL the crawler fetches (GET); the others below are only checked to stay in the mount."""
_CHECKED = ("hx-post", "data-post", "data-bulk-url", "data-log-stream", "data-log-history", "data-archive-search")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in _FOLLOWED + _CHECKED and value:
                self.urls.append((value, name in _FOLLOWED))


def _links(html: str) -> list[tuple[str, bool]]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


def crawl(site: Mounted, start: str) -> set[str]:
    """Every URL reached from ``start`` (a path under the mount); each answers 200 and links only inside the mount."""
    seen: set[str] = set()
    todo = [site.page(start)]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        reply = site.client.get(url)
        assert reply.status_code == 200, (url, reply.status_code)
        if reply.headers["content-type"].startswith("text/html"):
            for link, follow in _links(reply.text):
                assert link.startswith(f"{site.base}/"), f"{url} links to {link}, outside the mount {site.base or '/'}"
                if follow:
                    todo.append(link)
    return seen
