"""Zenith archive: job history, time-travel audit and search in SQL (SQLite, PostgreSQL, MySQL/MariaDB)."""

from zenith_archive.archiver import Archiver, BatchResult
from zenith_archive.db import DEFAULT_SQLITE_PATH, connect, default_url
from zenith_archive.logs import LogArchiver
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
from zenith_archive.redact import DEFAULT_REDACTED_KEYS, REDACTED, redact_keys
from zenith_archive.retention import CleanupReport, RetentionPolicy, cleanup
from zenith_archive.status import ArchiveStatus, ConsumerStatus, status

__all__ = [
    "COUNT_CAP",
    "DEFAULT_REDACTED_KEYS",
    "DEFAULT_SQLITE_PATH",
    "REDACTED",
    "ArchiveStatus",
    "ArchivedJob",
    "Archiver",
    "BatchResult",
    "CleanupReport",
    "ConsumerStatus",
    "Count",
    "LogArchiver",
    "Migration",
    "Page",
    "RetentionPolicy",
    "Timeline",
    "TimelineEvent",
    "cleanup",
    "connect",
    "count",
    "default_url",
    "export",
    "jobs",
    "migrate",
    "redact_keys",
    "search",
    "status",
    "timeline",
]
