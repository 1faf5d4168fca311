"""Zenith archive: job history, time-travel audit and search in SQL (SQLite, PostgreSQL, MySQL/MariaDB)."""

from zenith_archive.db import DEFAULT_SQLITE_PATH, connect, default_url
from zenith_archive.migrations import Migration, migrate
from zenith_archive.query import (
    COUNT_CAP,
    ArchivedJob,
    Count,
    Page,
    Timeline,
    TimelineEvent,
    count,
    export,
    jobs,
    search,
    timeline,
)

__all__ = [
    "COUNT_CAP",
    "DEFAULT_SQLITE_PATH",
    "ArchivedJob",
    "Count",
    "Migration",
    "Page",
    "Timeline",
    "TimelineEvent",
    "connect",
    "count",
    "default_url",
    "export",
    "jobs",
    "migrate",
    "search",
    "timeline",
]
