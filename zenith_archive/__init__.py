"""Zenith archive: job history, time-travel audit and search in SQL (SQLite, PostgreSQL, MySQL/MariaDB)."""

from zenith_archive.db import DEFAULT_SQLITE_PATH, connect, default_url
from zenith_archive.migrations import Migration, migrate

__all__ = ["DEFAULT_SQLITE_PATH", "Migration", "connect", "default_url", "migrate"]
