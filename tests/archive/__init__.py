"""Tests of zenith_archive, each run on SQLite, PostgreSQL and MariaDB."""
