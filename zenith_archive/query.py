"""Reading the archive: search with the query language, list jobs, count, a job's timeline, export.

Queries are written in the grammar of :mod:`zenith_protocol.query` (the same as live search);
:mod:`zenith_archive._compile` says how each construct becomes SQL. Listings page by keyset (the
key of the last row seen, never OFFSET), so a page costs the same at any depth and rows archived
meanwhile neither repeat nor hide others. Counts stop at a cap. On MySQL/MariaDB a search or
count whose results all hold one word first reads the newest jobs by key
(:mod:`zenith_archive._walk`): the FULLTEXT index would collect every job holding a frequent word.
Export streams rows from a server-side cursor, in constant memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal, TextIO, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.engine import Connection, Engine

from zenith_archive._compile import Dialect, condition, sqlite_text_driver
from zenith_archive._walk import Walk
from zenith_archive.fts import sqlite_fts
from zenith_archive.schema import job_events
from zenith_archive.schema import jobs as _JOBS
from zenith_protocol.codec import decode_event
from zenith_protocol.errors import ConfigError, NotFoundError, ProtocolError
from zenith_protocol.events import EventType, implied_start
from zenith_protocol.query import Query, parse

__all__ = [
    "COUNT_CAP",
    "EXPORT_FORMATS",
    "ArchivedJob",
    "Count",
    "Page",
    "Timeline",
    "TimelineEvent",
    "count",
    "export",
    "jobs",
    "search",
    "timeline",
]

COUNT_CAP = 10_000
"""Counts are exact up to this many jobs; past it they read ``10,000+``."""
EXPORT_FORMATS = ("jsonl", "csv")
_EXPORT_BATCH = 1_000


_Record = TypeVar("_Record", bound="_Row")


class _Row:
    """A table row as a dataclass whose fields are the selected columns, in order; one of them holds JSON text."""

    _JSON_FIELD: ClassVar[str]

    @classmethod
    def of(cls: type[_Record], row: Sequence[Any]) -> _Record:
        """The record a row of its columns (in field order) holds."""
        return cls(*row)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data, its JSON text field decoded when it is JSON."""
        data = asdict(self)  # type: ignore[call-overload]
        data[self._JSON_FIELD] = _decoded(data[self._JSON_FIELD])
        return data  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ArchivedJob(_Row):
    """One row of ``zenith_jobs`` (times in epoch ms); ``pk`` is the archive's own row id."""

    _JSON_FIELD: ClassVar[str] = "payload"

    pk: int
    queue: str
    job_id: str
    name: str | None
    state: str
    attempts: int
    enqueued_at: int | None
    started_at: int | None
    finished_at: int | None
    updated_at: int | None
    duration_ms: float | None
    worker_id: str | None
    error: str | None
    payload: str | None


_FIELD_NAMES = tuple(field.name for field in fields(ArchivedJob))
_COLUMNS = tuple(_JOBS.c["id" if name == "pk" else name] for name in _FIELD_NAMES)


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Page:
    """One page of a listing; pass ``next_key`` as ``after_key`` for the next (None: this was the last)."""

    rows: list[ArchivedJob]
    next_key: str | None


@dataclass(frozen=True)
class Count:
    """How many jobs match: exact below the cap; ``capped`` when there are more than ``n``."""

    n: int
    capped: bool

    def __str__(self) -> str:
        return f"{self.n:,}+" if self.capped else f"{self.n:,}"


def _query(query: str | Query, now_ms: int | None) -> Query:
    return parse(query, now_ms=now_ms) if isinstance(query, str) else query


def _where(connection: Connection, query: Query) -> ColumnElement[bool]:
    return condition(query, Dialect.of(connection))


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def _bad_key(key: str) -> ConfigError:
    return ConfigError(f"{key!r} is not a page key this listing returned; start again without one")


def _page(connection: Connection, statement: Select[Any], limit: int, key: Callable[[ArchivedJob], str]) -> Page:
    """The first ``limit`` rows of ``statement`` (which asks for one more, to know whether a next page exists)."""
    return _page_of(connection.execute(statement.limit(limit + 1)), limit, key)


def _page_of(found: Iterable[Sequence[Any]], limit: int, key: Callable[[ArchivedJob], str]) -> Page:
    """The page of ``limit`` rows of ``found``, which holds one more when a next page exists."""
    rows = [ArchivedJob.of(row) for row in found]
    more = len(rows) > limit
    del rows[limit:]
    return Page(rows, key(rows[-1]) if more else None)


def search(
    engine: Engine, query: str | Query, *, limit: int = 50, after_key: str | None = None, now_ms: int | None = None
) -> Page:
    """The jobs matching ``query``, newest archived first, one page of at most ``limit``.

    Raises:
        QuerySyntaxError: the query does not parse.
        UnsupportedQueryError: ``state:`` names a state the archive does not have.
        ConfigError: ``after_key`` is not a key a search returned.
    """
    _check_limit(limit)
    parsed = _query(query, now_ms)
    if after_key is not None and not after_key.isdigit():
        raise _bad_key(after_key)
    with engine.connect() as connection:
        walk = Walk.of(parsed, Dialect.of(connection))
        walked = None if walk is None else walk.page(connection, _COLUMNS, _int(after_key), limit)
        if walked is not None:
            return _page_of(walked, limit, lambda job: str(job.pk))
        statement, pk = _matching(connection, parsed)
        if after_key is not None:
            statement = statement.where(pk < int(after_key))
        return _page(connection, statement.order_by(pk.desc()), limit, lambda job: str(job.pk))


def _int(key: str | None) -> int | None:
    return None if key is None else int(key)


def _matching(connection: Connection, query: Query) -> tuple[Select[Any], ColumnElement[int]]:
    """The jobs matching ``query``, and the column of their ids to order and page by.

    On SQLite a free-text term every result holds drives the query: the full-text table is read
    in rowid order, joined to the jobs, so a page of a common word stops after its 50 rows.
    """
    dialect = Dialect.of(connection)
    driver = sqlite_text_driver(query, dialect)
    if driver is None:
        return select(*_COLUMNS).where(condition(query, dialect)), _JOBS.c.id
    match, rest = driver
    joined = sqlite_fts.join(_JOBS, _JOBS.c.id == sqlite_fts.c.rowid)
    return select(*_COLUMNS).select_from(joined).where(match, condition(rest, dialect)), sqlite_fts.c.rowid


def jobs(
    engine: Engine,
    *,
    queue: str | None = None,
    state: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 50,
    after_key: str | None = None,
) -> Page:
    """Jobs by queue, state and last update in ``[since_ms, until_ms)``, the most recently updated first.

    Served by the ``(queue, state, updated_at, id)`` index; jobs with no update time are not listed.

    Raises:
        ConfigError: ``after_key`` is not a key this listing returned.
    """
    _check_limit(limit)
    moment = _JOBS.c.updated_at
    conditions: list[ColumnElement[bool]] = [moment.is_not(None)]
    if queue is not None:
        conditions.append(_JOBS.c.queue == queue)
    if state is not None:
        conditions.append(_JOBS.c.state == state)
    if since_ms is not None:
        conditions.append(moment >= since_ms)
    if until_ms is not None:
        conditions.append(moment < until_ms)
    if after_key is not None:
        at, pk = _split_key(after_key)
        conditions.append(or_(moment < at, and_(moment == at, _JOBS.c.id < pk)))
    statement = select(*_COLUMNS).where(*conditions).order_by(moment.desc(), _JOBS.c.id.desc())
    with engine.connect() as connection:
        return _page(connection, statement, limit, lambda job: f"{job.updated_at}.{job.pk}")


def _split_key(key: str) -> tuple[int, int]:
    at, dot, pk = key.partition(".")
    try:
        if dot:
            return int(at), int(pk)
    except ValueError:
        pass
    raise _bad_key(key)


def count(engine: Engine, query: str | Query, *, cap: int = COUNT_CAP, now_ms: int | None = None) -> Count:
    """How many jobs match ``query``: exact up to ``cap``, else ``Count(cap, capped=True)`` (read ``10,000+``)."""
    if cap < 1:
        raise ValueError(f"cap must be at least 1, got {cap}")
    parsed = _query(query, now_ms)
    with engine.connect() as connection:
        dialect = Dialect.of(connection)
        walk = Walk.of(parsed, dialect)
        walked = None if walk is None else walk.count(connection, cap)
        if walked is not None:
            return Count(min(walked, cap), walked > cap)
        driver = sqlite_text_driver(parsed, dialect)
        if driver is not None and not driver[1].clauses:  # one word or phrase: its full-text rows are the jobs
            ids = select(sqlite_fts.c.rowid).where(driver[0])
        else:
            ids = select(_JOBS.c.id).where(condition(parsed, dialect))
        matching = ids.limit(cap + 1).subquery()
        n = int(connection.execute(select(func.count()).select_from(matching)).scalar_one())
    return Count(min(n, cap), n > cap)


@dataclass(frozen=True)
class TimelineEvent(_Row):
    """One lifecycle event of a job (``data``: the event as archived, JSON text)."""

    _JSON_FIELD: ClassVar[str] = "data"

    stream_id: str
    at: int
    type: str
    attempt: int | None
    worker_id: str | None
    actor: str | None
    error: str | None
    data: str | None

    @property
    def stack(self) -> str | None:
        """The failure's traceback the event carried (``failed`` events of runtimes that write one)."""
        decoded = _decoded(self.data)
        value = decoded.get("stack") if isinstance(decoded, dict) else None
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Timeline:
    """A job and every event of it, in stream order: enqueue, attempts, retries, operator actions, the end."""

    job: ArchivedJob
    events: list[TimelineEvent]


def _stream_order(event: TimelineEvent) -> tuple[int, ...]:
    """A stream id (``ms-seq``) as numbers; one that does not read sorts by its time, first."""
    ms, _, seq = event.stream_id.partition("-")
    if ms.isdigit() and seq.isdigit():
        return (int(ms), int(seq))
    return (event.at, -1)


def timeline(engine: Engine, job_id: str, *, queue: str | None = None) -> Timeline:
    """Job ``job_id`` (of ``queue``, needed when several queues have a job of that id) and its events.

    Raises:
        NotFoundError: the archive has no such job.
        ConfigError: the id is in several queues and ``queue`` is not given.
    """
    with engine.connect() as connection:
        found = select(*_COLUMNS).where(_JOBS.c.job_id == job_id)
        if queue is not None:
            found = found.where(_JOBS.c.queue == queue)
        rows = [ArchivedJob.of(row) for row in connection.execute(found.order_by(_JOBS.c.queue).limit(11))]
        if not rows:
            where = f" in queue {queue!r}" if queue is not None else ""
            raise NotFoundError("job", job_id, hint=f"the archive has no job of that id{where}")
        if len(rows) > 1:
            queues = ", ".join(repr(row.queue) for row in rows[:10])
            raise ConfigError(f"job {job_id!r} is in several queues ({queues}); name the queue")
        job = rows[0]
        own = or_(
            job_events.c.job_pk == job.pk,
            and_(job_events.c.job_pk.is_(None), job_events.c.queue == job.queue, job_events.c.job_id == job.job_id),
        )
        statement = select(*(job_events.c[field.name] for field in fields(TimelineEvent))).where(own)
        events = [item for row in connection.execute(statement) for item in _with_start(TimelineEvent.of(row))]
    return Timeline(job, sorted(events, key=_stream_order))  # a stable sort: an implied start stays first


def _with_start(event: TimelineEvent) -> list[TimelineEvent]:
    """``event``, after the ``started`` event it stands for too when it carries ``startedAt`` (PROTOCOL 8.4)."""
    if event.data is None or '"startedAt"' not in event.data:  # most rows: no need to decode them
        return [event]
    try:
        start = implied_start(decode_event(event.data))
    except ProtocolError:
        return [event]
    if start is None:
        return [event]
    shown = TimelineEvent(
        stream_id=event.stream_id,
        at=start.timestamp,
        type=EventType.STARTED.value,
        attempt=start.attempt,
        worker_id=start.worker_id,
        actor=None,
        error=None,
        data=None,
    )
    return [shown, event]


def _export_rows(engine: Engine, query: Query) -> Iterator[ArchivedJob]:
    with engine.connect() as connection:
        statement = select(*_COLUMNS).where(_where(connection, query)).order_by(_JOBS.c.id)
        streamed = connection.execution_options(stream_results=True, yield_per=_EXPORT_BATCH)
        for row in streamed.execute(statement):
            yield ArchivedJob.of(row)


def export(
    engine: Engine,
    query: str | Query,
    fmt: Literal["jsonl", "csv"],
    out: TextIO,
    *,
    progress: Callable[[int], None] | None = None,
    now_ms: int | None = None,
) -> int:
    """Write every job matching ``query`` to ``out``, oldest archived first; returns how many.

    ``jsonl``: one JSON object per line (the payload decoded); ``csv``: a header, then one row per
    job (the payload as text). Rows stream from a server-side cursor, so memory stays flat
    whatever the count. ``progress`` is called with the running total every 1,000 rows and at the end.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export writes {' or '.join(EXPORT_FORMATS)}, not {fmt!r}")
    write = _csv_writer(out) if fmt == "csv" else _jsonl_writer(out)
    written = 0
    for job in _export_rows(engine, _query(query, now_ms)):
        write(job)
        written += 1
        if progress is not None and written % _EXPORT_BATCH == 0:
            progress(written)
    if progress is not None:
        progress(written)
    return written


def _jsonl_writer(out: TextIO) -> Callable[[ArchivedJob], None]:
    def write(job: ArchivedJob) -> None:
        out.write(json.dumps(job.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")

    return write


def _csv_writer(out: TextIO) -> Callable[[ArchivedJob], None]:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_FIELD_NAMES)

    def write(job: ArchivedJob) -> None:
        writer.writerow(_cells(job))

    return write


def _cells(job: ArchivedJob) -> Sequence[object]:
    return ["" if value is None else value for value in (getattr(job, name) for name in _FIELD_NAMES)]
