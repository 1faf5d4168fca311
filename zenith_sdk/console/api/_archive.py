"""The SQL archive: search, list jobs, count, a job's timeline.

The archive is ``settings.archive_url``, else the zero-config SQLite file when it exists (a read
never creates it). ``zenith_archive`` needs SQLAlchemy, so it is imported here, on first use: the
rest of the console works without it, and these endpoints then answer 404 with what to install.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from zenith_protocol import ConfigError, NotFoundError
from zenith_protocol.query import time_ms
from zenith_sdk.console._archive_engine import open_archive
from zenith_sdk.console._errors import Unavailable
from zenith_sdk.console._models import Camel
from zenith_sdk.console.api._deps import ERRORS, Console

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from zenith_archive.query import ArchivedJob, Page
    from zenith_sdk.console._state import ConsoleState

__all__ = ["router"]

router = APIRouter(prefix="/archive", tags=["archive"], responses=ERRORS)

_HINT = "set ZENITH_ARCHIVE_URL to the archive's database, or run `zenith archive migrate` to create the SQLite one"
_Limit = Annotated[int, Query(ge=1, le=1000)]
_After = Annotated[str | None, Query(description="the next page: the `next` key the last page returned")]


class ArchivedJobView(Camel):
    """One archived job (times in epoch ms); ``pk`` is the archive's own row id."""

    pk: int
    queue: str
    job_id: str
    name: str | None = None
    state: str
    attempts: int
    enqueued_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    updated_at: int | None = None
    duration_ms: float | None = None
    worker_id: str | None = None
    error: str | None = None
    payload: Any = Field(default=None, description="the job as archived (redacted), JSON when it was JSON")

    @classmethod
    def of(cls, job: ArchivedJob) -> ArchivedJobView:
        """The view of ``job``."""
        return cls.model_validate(job.to_json())


class ArchivePage(BaseModel):
    """One page of archived jobs, newest first; pass ``next`` as ``after`` for the next page (null: the last)."""

    jobs: list[ArchivedJobView]
    next: str | None


class ArchiveCount(BaseModel):
    """How many archived jobs match: exact below the cap; ``capped`` when there are more than ``n``."""

    n: int
    capped: bool


class SearchPage(ArchivePage):
    """A page of a search, with how many jobs match in all."""

    total: ArchiveCount


class TimelineEventView(Camel):
    """One lifecycle event of an archived job (``data``: the event as archived)."""

    stream_id: str
    at: int
    type: str
    attempt: int | None = None
    worker_id: str | None = None
    actor: str | None = None
    error: str | None = None
    data: Any = None


class TimelineView(BaseModel):
    """An archived job and every event of it, in order."""

    job: ArchivedJobView
    events: list[TimelineEventView]


@contextmanager
def _archive(console: ConsoleState) -> Iterator[Engine]:
    """The console's archive; 404 when there is none, 503 when its database does not answer."""
    try:
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        import zenith_archive  # noqa: F401  (needs SQLAlchemy and Alembic)
    except ModuleNotFoundError as exc:
        hint = f"the console reads it with the archive extra ({exc.name} is missing): pip install 'zenith-sdk[archive]'"
        raise NotFoundError("archive", "", hint=hint) from exc
    try:
        engine = console.archive(open_archive)
        if engine is None:
            raise NotFoundError("archive", console.settings.archive_url or "SQLite file", hint=_HINT)
        yield engine
    except (OperationalError, InterfaceError) as exc:
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip().splitlines()[0]
        raise Unavailable(f"the archive's database does not answer ({reason}); check that it runs") from exc


def _page(page: Page) -> dict[str, Any]:
    return {"jobs": [ArchivedJobView.of(job) for job in page.rows], "next": page.next_key}


def _time(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return time_ms(text)
    except ValueError as exc:
        raise ConfigError(f"{name} {text!r} is not a time: write ISO-8601 (2026-01-31T12:00:00Z) or 2h, 7d") from exc


@router.get("/search", response_model=SearchPage)
def get_search(
    q: Annotated[str, Query(description="the search grammar of `zenith search`")], console: Console,
    limit: _Limit = 50, after: _After = None,
) -> SearchPage:  # fmt: skip
    """Archived jobs matching a query, newest archived first, with the total."""
    with _archive(console) as engine:
        from zenith_archive.query import count, search

        page = search(engine, q, limit=limit, after_key=after)
        total = count(engine, q)
    return SearchPage(**_page(page), total=ArchiveCount(n=total.n, capped=total.capped))


@router.get("/count", response_model=ArchiveCount)
def get_count(
    q: Annotated[str, Query(description="the search grammar of `zenith search`")], console: Console
) -> ArchiveCount:
    """How many archived jobs match a query (exact up to a cap)."""
    with _archive(console) as engine:
        from zenith_archive.query import count

        total = count(engine, q)
    return ArchiveCount(n=total.n, capped=total.capped)


@router.get("/jobs", response_model=ArchivePage)
def get_jobs(
    console: Console,
    queue: str | None = None,
    state: str | None = None,
    since: Annotated[str | None, Query(description="updated at or after (ISO-8601, or 2h, 7d ago)")] = None,
    until: Annotated[str | None, Query(description="updated before (ISO-8601, or 2h, 7d ago)")] = None,
    limit: _Limit = 50,
    after: _After = None,
) -> ArchivePage:
    """Archived jobs by queue, state and time of their last update, the most recent first."""
    since_ms, until_ms = _time(since, "since"), _time(until, "until")
    with _archive(console) as engine:
        from zenith_archive.query import jobs
        from zenith_archive.schema import ALL_STATES

        if state is not None and state not in ALL_STATES:
            raise ConfigError(f"state {state!r} is not a state; use one of {', '.join(ALL_STATES)}")
        page = jobs(
            engine, queue=queue, state=state, since_ms=since_ms, until_ms=until_ms, limit=limit, after_key=after
        )
    return ArchivePage(**_page(page))


@router.get("/jobs/{job_id}/timeline", response_model=TimelineView)
def get_timeline(
    job_id: str,
    console: Console,
    queue: Annotated[str | None, Query(description="needed when several queues hold the id")] = None,
) -> TimelineView:
    """An archived job and every event of it, in order, with who did what."""
    with _archive(console) as engine:
        from zenith_archive.query import timeline

        found = timeline(engine, job_id, queue=queue)
    events = [TimelineEventView.model_validate(event.to_json()) for event in found.events]
    return TimelineView(job=ArchivedJobView.of(found.job), events=events)
