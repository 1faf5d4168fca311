"""Zenith archive: job history, time-travel audit and search in SQL (SQLite, PostgreSQL, MySQL/MariaDB)."""

__all__: list[str] = []
