"""Zenith archive: job history, time-travel audit and search in SQL (SQLite, PostgreSQL, MySQL/MariaDB)."""

from zenith_archive.archiver import Archiver, BatchResult
from zenith_archive.db import DEFAULT_SQLITE_PATH, connect, default_url
from zenith_archive.logs import LogArchiver
from zenith_archive.migrations import Migration, migrate
from zenith_archive.redact import DEFAULT_REDACTED_KEYS, REDACTED, redact_keys
from zenith_archive.retention import CleanupReport, RetentionPolicy, cleanup
from zenith_archive.status import ArchiveStatus, ConsumerStatus, status

__all__ = [
    "DEFAULT_REDACTED_KEYS",
    "DEFAULT_SQLITE_PATH",
    "REDACTED",
    "ArchiveStatus",
    "Archiver",
    "BatchResult",
    "CleanupReport",
    "ConsumerStatus",
    "LogArchiver",
    "Migration",
    "RetentionPolicy",
    "cleanup",
    "connect",
    "default_url",
    "migrate",
    "redact_keys",
    "status",
]
