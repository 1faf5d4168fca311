"""How far the archive is behind the stream: lag, pending entries, consumers, rows (``zenith archive status``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import redis
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from zenith_archive._ingest import stream_key
from zenith_archive.archiver import DEFAULT_GROUP
from zenith_archive.migrations import current_revision, head_revision
from zenith_archive.schema import archive_meta, legacy_job_archive, legacy_system_logs, metadata
from zenith_protocol import KeySpace

__all__ = ["ArchiveStatus", "ConsumerStatus", "status"]

_ESTIMATE_ABOVE = 100_000
"""On PostgreSQL and MySQL, tables the statistics put above this many rows are not counted row by row."""


@dataclass(frozen=True)
class ConsumerStatus:
    """One archiver of the group: entries it holds unacknowledged, and how long since it last read."""

    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True)
class ArchiveStatus:
    """The archive and its consumer group at one moment.

    ``lag`` is the number of stream entries the group has not read yet (None when Redis cannot
    tell, before 7.0 or after a trim); ``gap`` is True when entries were trimmed from the
    stream before the group read them (they are lost to the archive). ``rows`` counts each
    table, estimated from the database's statistics for very large tables (``rows_estimated``).
    """

    stream: str
    stream_length: int
    first_id: str | None
    last_id: str | None
    group: str
    group_exists: bool
    lag: int | None
    pending: int
    last_delivered_id: str | None
    gap: bool | None
    consumers: list[ConsumerStatus]
    last_archived_id: str | None
    last_archived_at_ms: int | None
    revision: str | None
    head_revision: str
    rows: dict[str, int]
    rows_estimated: list[str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``zenith archive status --json``)."""
        return asdict(self)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream(client: redis.Redis, stream: str) -> dict[str, Any]:
    try:
        info: dict[str, Any] = client.xinfo_stream(stream)
    except redis.ResponseError:  # no such key yet
        return {}
    return info


def _group(client: redis.Redis, stream: str, group: str) -> tuple[dict[str, Any] | None, list[ConsumerStatus]]:
    try:
        groups: list[dict[str, Any]] = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None, []
    found = next((g for g in groups if _text(g.get("name")) == group), None)
    if found is None:
        return None, []
    consumers = [
        ConsumerStatus(name=_text(c["name"]) or "", pending=int(c["pending"]), idle_ms=int(c["idle"]))
        for c in client.xinfo_consumers(stream, group)
    ]
    return found, consumers


def _gap(info: dict[str, Any], group: dict[str, Any] | None) -> bool | None:
    """Whether entries the group never read were trimmed from the stream (None: no group or no stream)."""
    delivered = _text(group.get("last-delivered-id")) if group else None
    first = info.get("first-entry")
    if group is None or delivered is None:
        return None
    if not first or stream_key(_text(first[0]) or "") <= stream_key(delivered):
        return False  # every entry after the last delivered one is still there
    added, read = info.get("entries-added"), group.get("entries-read")
    if added is None:  # before Redis 7: PROTOCOL 8.2's test alone
        return True
    # Entries added but never read outnumber those left: some were trimmed unread.
    return int(added) - int(read or 0) > int(info.get("length", 0))


def _count(connection: Connection, table: str) -> tuple[int, bool]:
    dialect = connection.dialect.name
    estimate: Any = None
    if dialect == "postgresql":
        estimate = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
        ).scalar()
    elif dialect in ("mysql", "mariadb"):
        estimate = connection.execute(
            text(
                "SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = :t"
            ),
            {"t": table},
        ).scalar()
    if estimate is not None and float(estimate) > _ESTIMATE_ABOVE:
        return int(estimate), True
    tables = {
        **metadata.tables,
        legacy_job_archive.name: legacy_job_archive,
        legacy_system_logs.name: legacy_system_logs,
    }
    return int(connection.execute(select(func.count()).select_from(tables[table])).scalar() or 0), False


def _last_archived(connection: Connection) -> tuple[str | None, int | None]:
    marks = connection.execute(select(archive_meta.c.value).where(archive_meta.c.key.like("consumer:%"))).scalars()
    best: tuple[str | None, int | None] = (None, None)
    for value in marks:
        try:
            mark = json.loads(value or "")
            stream_id, at = str(mark["streamId"]), int(mark["archivedAt"])
        except (ValueError, KeyError, TypeError):
            continue
        if best[0] is None or stream_key(stream_id) > stream_key(best[0]):
            best = (stream_id, at)
    return best


def status(
    client: redis.Redis, engine: Engine, *, keyspace: KeySpace | None = None, group: str = DEFAULT_GROUP
) -> ArchiveStatus:
    """The archive's status: the group's lag and pending entries, its consumers, the archive's rows."""
    stream = (keyspace or KeySpace()).events()
    info = _stream(client, stream)
    found, consumers = _group(client, stream, group)
    delivered = _text(found.get("last-delivered-id")) if found else None
    rows: dict[str, int] = {}
    estimated: list[str] = []
    with engine.connect() as connection:
        revision = current_revision(connection)
        last_id, last_at = _last_archived(connection) if revision is not None else (None, None)
        if revision is not None:
            for table in (*metadata.tables, legacy_job_archive.name, legacy_system_logs.name):
                rows[table], approximate = _count(connection, table)
                if approximate:
                    estimated.append(table)
    first, last = info.get("first-entry"), info.get("last-entry")
    lag = found.get("lag") if found else None
    return ArchiveStatus(
        stream=stream,
        stream_length=int(info.get("length", 0)),
        first_id=_text(first[0]) if first else None,
        last_id=_text(last[0]) if last else None,
        group=group,
        group_exists=found is not None,
        lag=int(lag) if lag is not None else (int(info.get("length", 0)) if found is None else None),
        pending=int(found["pending"]) if found else 0,
        last_delivered_id=delivered,
        gap=_gap(info, found),
        consumers=consumers,
        last_archived_id=last_id,
        last_archived_at_ms=last_at,
        revision=revision,
        head_revision=head_revision(),
        rows=rows,
        rows_estimated=estimated,
    )
